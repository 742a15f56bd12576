//! [`Controller`]: this node as its own single-node KRaft controller. It owns the metadata
//! log ([`MetadataLog`]) and the current [`MetadataImage`], which is the source of truth the
//! handlers read ([`Controller::image`]), and performs the metadata operations with the
//! checks of Kafka's controller (`ReplicationControlManager`,
//! `ConfigurationControlManager`, `ControllerApis`): create and delete topics, add
//! partitions, alter and describe topic configs. Each returns one result per item with
//! Kafka's error codes and messages ([`ApiError`]).
//!
//! # Start-up
//!
//! [`Controller::open`] takes what [`replay::load`](super::replay::load) read, opens the log
//! (torn tail truncated, new epoch, unfinished transaction aborted), and then writes what
//! `kafka-storage.sh format` and a first start would: on a log without `metadata.version`,
//! the bootstrap records in a metadata transaction (`BeginTransactionRecord` "Bootstrap
//! records", `FeatureLevelRecord` `metadata.version` = [`METADATA_VERSION`] (4.0-IV3),
//! `EndTransactionRecord`); then, when this broker's registration is missing or differs
//! from the configured one (endpoints, rack, supported features, log directories, fenced),
//! a new `RegisterBrokerRecord` (broker epoch = its offset, random incarnation id, not
//! fenced); and likewise a `RegisterControllerRecord` for the controller listeners.
//! `kraft.version` stays 0 (a static quorum): Kafka writes no record for it.
//!
//! # Operations
//!
//! Operations are serialized by a lock around the log. Each one validates against the
//! current image, builds the records, applies them to a copy of the image (which checks
//! them, nothing is written if that fails), appends them to the log as **one batch** (so
//! a request's changes are atomic, as Kafka's `ControllerResult.atomicOf`) and fsyncs it,
//! and only then publishes the new image and returns a [`TopicDelta`] listing the
//! partitions created, the topics deleted and the topics whose configs changed, for the
//! broker to act on its partition logs. `validate_only` requests run every check and write
//! nothing. The operations are blocking (file I/O and fsync): call them from
//! `spawn_blocking`, or through [`Controller::run`].
//!
//! # New partitions: logs first
//!
//! The partitions an operation creates (CreateTopics, CreatePartitions, auto-creation) get
//! their logs *before* their records are written, through a [`PartitionStore`]: a topic
//! whose logs cannot be made (no space, no inodes, no descriptors, something in the way)
//! is left out of the batch and answered `KAFKA_STORAGE_ERROR`, with whatever was made of
//! it removed again; the records of the others are written. If the batch itself cannot be
//! written, every log made for it is removed. So a topic is never in the image without its
//! logs (Kafka's broker would instead take the log directory offline after the fact; with
//! one node and nobody else to lead the partitions, refusing the topic is the answer a
//! client can act on: it may retry once the disk is fixed).
//!
//! # Crash safety
//!
//! Records are durable before anything else changes except new partitions' logs, so a
//! crash leaves the directories behind the metadata, or with the logs of a topic that was
//! never written (deleted at start-up as an unknown topic):
//!
//! * crash before the fsync completes: the batch is whole (the change happened) or torn
//!   (its CRC fails, replay drops it and [`MetadataLog::open`] truncates it: the change
//!   never happened; the logs made for its new partitions belong to no topic, or to no
//!   partition, of the image and are deleted at start-up by
//!   [`reconcile`](super::reconcile::reconcile));
//! * crash after the fsync but before the image was published or the directories were
//!   changed: replay rebuilds the image with the change, and at start-up the broker runs
//!   [`reconcile`](super::reconcile::reconcile) on the image and the directories on disk:
//!   it creates the missing directories of existing partitions, and deletes the
//!   directories of topics that no longer exist or whose `partition.metadata` names
//!   another topic id (a topic deleted and created again).
//!
//! The client may not have had its answer in the second case; as with Kafka, a retry then
//! sees the result of the first attempt (`TOPIC_ALREADY_EXISTS`, say).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwap;
use gregor_protocol::messages::begin_transaction_record::BeginTransactionRecord;
use gregor_protocol::messages::config_record::ConfigRecord;
use gregor_protocol::messages::end_transaction_record::EndTransactionRecord;
use gregor_protocol::messages::feature_level_record::FeatureLevelRecord;
use gregor_protocol::messages::partition_record::PartitionRecord;
use gregor_protocol::messages::producer_ids_record::ProducerIdsRecord;
use gregor_protocol::messages::register_broker_record::{
    BrokerEndpoint, BrokerFeature, RegisterBrokerRecord,
};
use gregor_protocol::messages::register_controller_record::{
    ControllerEndpoint, ControllerFeature, RegisterControllerRecord,
};
use gregor_protocol::messages::remove_topic_record::RemoveTopicRecord;
use gregor_protocol::messages::topic_record::TopicRecord;
use gregor_protocol::metadata_frame::VersionedRecord;
use gregor_protocol::{MetadataRecord, VersionRange};
use uuid::Uuid;

use super::image::{
    ConfigResource, DIRECTORY_MIGRATING, DIRECTORY_UNASSIGNED, Endpoint, ImageError,
    METADATA_VERSION_FEATURE, MetadataImage,
};
use super::meta_properties::{MetaProperties, random_uuid};
use super::metadata_log::{
    DEFAULT_SEGMENT_BYTES, DEFAULT_SEGMENT_MS, MetadataLog, MetadataLogError, MetadataLogOptions,
    OpenReport,
};
use super::replay::LoadedMetadata;
use super::snapshot_retention;
use crate::config::Config;
use crate::config::{Listener, SecurityProtocol};
use crate::topic_config::{self, BrokerConfigs, DescribedConfig};
use crate::topic_names::{self, InvalidName};

/// The `metadata.version` level this controller writes: 25, Kafka 4.0-IV3 (the level
/// Kafka 4.0's `kafka-storage.sh format` picks). Its records are those of
/// [`PARTITION_RECORD_VERSION`] and [`REGISTER_BROKER_RECORD_VERSION`]; levels 23 to 29
/// (4.0-IV1 to 4.2-IV1) write the same records, 30 (4.3-IV0) would need
/// `RegisterBrokerRecord` v4 (cordoned log directories), which Kafka before 4.3 cannot read.
pub const METADATA_VERSION: i16 = 25;
/// Kafka's name of [`METADATA_VERSION`].
pub const METADATA_VERSION_NAME: &str = "4.0-IV3";
/// The lowest `metadata.version` this broker reads (3.3-IV3, Kafka 4's minimum).
pub const MIN_METADATA_VERSION: i16 = 7;
/// The highest `metadata.version` this broker supports (registers, and accepts in
/// UpdateFeatures): 29, 4.2-IV1, the last level whose records are those it writes (see
/// [`METADATA_VERSION`]).
pub const MAX_METADATA_VERSION: i16 = 29;
/// The KRaft version feature (0 for a static quorum, never written as a record).
pub const KRAFT_VERSION_FEATURE: &str = "kraft.version";
/// `PartitionRecord` version at [`METADATA_VERSION`] (directories; ELR fields, left null).
pub const PARTITION_RECORD_VERSION: i16 = 2;
/// `RegisterBrokerRecord` version at [`METADATA_VERSION`] (log directories).
pub const REGISTER_BROKER_RECORD_VERSION: i16 = 3;
/// `RegisterControllerRecord` version.
pub const REGISTER_CONTROLLER_RECORD_VERSION: i16 = 0;
/// Kafka's limit of partitions created by one request (`MAX_PARTITIONS_PER_BATCH`).
pub const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;
/// Producer ids per block (Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;
/// Name of the bootstrap transaction, as Kafka's controller writes it.
pub const BOOTSTRAP_TRANSACTION: &str = "Bootstrap records";

// The controller answers with Kafka's error codes (the protocol library's table).
use gregor_protocol::error_code::*;

mod acls;
mod activation;
mod alter_configs;
mod alter_partition;
mod backend;
#[cfg(test)]
mod backend_tests;
mod brokers;
mod client_quotas;
mod elect_leaders;
pub mod heartbeats;
#[cfg(test)]
mod membership_tests;
mod mutation_quota;
mod observing;
pub mod partition_change;
pub mod placement;
mod reassignment;
mod scram_credentials;
mod snapshots;
pub use acls::{AclDeletion, MAX_RECORDS_PER_USER_OP};
pub use activation::run_activation;
pub use alter_configs::ReplaceConfigsResource;
pub(crate) use alter_configs::{
    apply_changes, apply_changes_with, changed_config_records, check_no_nulls, check_unique_names,
};
pub use backend::{Backend, PROPOSAL_TIMEOUT, QuorumBackend};
pub use brokers::{HeartbeatReply, run_session_timer};
pub use client_quotas::{QuotaAlteration, QuotaAlterationResult};
pub use elect_leaders::{ElectionType, TopicElection};
pub use mutation_quota::{MutationQuota, Unbounded};
pub use reassignment::{OngoingReassignment, ReassignmentTarget, TopicReassignment};
pub use scram_credentials::{ScramDeletion, ScramResult, ScramUpsertion};
pub use snapshots::{SnapshotOptions, SnapshotOutcome};

/// A Kafka error code and message for one item of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The error code.
    pub code: i16,
    /// The message (Kafka's default message of the code when the check has none).
    pub message: Option<String>,
}

impl ApiError {
    /// An error with a message.
    pub fn new(code: i16, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: Some(message.into()),
        }
    }

    /// An error with Kafka's default message for `code`.
    pub fn with_default_message(code: i16) -> ApiError {
        let message = match code {
            UNKNOWN_TOPIC_OR_PARTITION => "This server does not host this topic-partition.",
            UNKNOWN_TOPIC_ID => "This server does not host this topic ID.",
            TOPIC_DELETION_DISABLED => "Topic deletion is disabled.",
            _ => {
                return ApiError {
                    code,
                    message: None,
                };
            }
        };
        ApiError::new(code, message)
    }
}

/// An operation that failed as a whole (nothing was changed, unless the log reports an
/// fsync failure, after which the log refuses appends until restart).
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The metadata log could not be written.
    #[error(transparent)]
    Log(#[from] MetadataLogError),
    /// The records built do not apply to the image (a bug).
    #[error("internal error: {0}")]
    Image(#[from] ImageError),
    /// This node is not the active controller of the cluster (Kafka's
    /// `NotControllerException`): nothing was written.
    #[error("this node is not the active controller (active: {active:?})")]
    NotController {
        /// The active controller, if known.
        active: Option<i32>,
    },
    /// The metadata quorum failed the proposal (some records may still commit, as after a
    /// failed write to Kafka's quorum).
    #[error("metadata quorum: {0}")]
    Quorum(String),
    /// The proposal was not committed in time (no majority, say).
    #[error("the metadata change was not committed within {} s", PROPOSAL_TIMEOUT.as_secs())]
    Timeout,
}

impl ControllerError {
    /// The error code to give every item of the failed request.
    pub fn code(&self) -> i16 {
        match self {
            ControllerError::Log(MetadataLogError::Io { .. } | MetadataLogError::Failed(_)) => {
                KAFKA_STORAGE_ERROR
            }
            ControllerError::NotController { .. } => NOT_CONTROLLER,
            ControllerError::Timeout => REQUEST_TIMED_OUT,
            _ => UNKNOWN_SERVER_ERROR,
        }
    }

    /// The error for every item of the failed request.
    pub fn to_api_error(&self) -> ApiError {
        ApiError::new(self.code(), self.to_string())
    }
}

/// What the controller needs to know about this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerOptions {
    /// This node's id (`node.id`).
    pub node_id: i32,
    /// The directory holding `__cluster_metadata-0` (`metadata.log.dir`, else the first
    /// `log.dirs`).
    pub metadata_log_dir: PathBuf,
    /// The directory ids of every log directory (`directory.id` of their
    /// `meta.properties`), registered as the broker's log directories.
    pub directory_ids: Vec<Uuid>,
    /// The broker's advertised endpoints (registered; clients get them in Metadata); none
    /// on a controller-only node, which registers no broker.
    pub endpoints: Vec<Endpoint>,
    /// The controller listeners (registered with `RegisterControllerRecord`; none skips
    /// the controller registration).
    pub controller_endpoints: Vec<Endpoint>,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// `num.partitions`: the partition count of topics created with -1.
    pub num_partitions: i32,
    /// `default.replication.factor`: the replication factor of topics created with -1.
    pub default_replication_factor: i16,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `metadata.log.segment.bytes`.
    pub metadata_segment_bytes: u64,
    /// `metadata.log.segment.ms`.
    pub metadata_segment_ms: i64,
    /// When to write metadata snapshots and how long to keep them and the log.
    pub snapshots: SnapshotOptions,
    /// The static broker configs (`server.properties` with overrides), for the defaults
    /// and synonyms of topic configs.
    pub static_configs: BTreeMap<String, String>,
    /// The cluster id (`meta.properties`): brokers registering must have the same.
    pub cluster_id: String,
    /// `broker.session.timeout.ms`: brokers that do not heartbeat for this long are fenced.
    pub broker_session_timeout_ms: u64,
}

/// Kafka's id of a security protocol.
fn security_protocol_id(protocol: Option<SecurityProtocol>) -> i16 {
    match protocol {
        None | Some(SecurityProtocol::Plaintext) => 0,
        Some(SecurityProtocol::Ssl) => 1,
        Some(SecurityProtocol::SaslPlaintext) => 2,
        Some(SecurityProtocol::SaslSsl) => 3,
    }
}

impl ControllerOptions {
    /// The options of a broker configured by `config` whose metadata log directory has
    /// `meta` (`directory_ids` holds its directory id only: add those of the other log
    /// directories). Listeners with an empty host are registered as `localhost`; a port 0
    /// should be replaced by the bound port (see [`Controller::update_broker_registration`]).
    pub fn from_config(config: &Config, meta: &MetaProperties) -> ControllerOptions {
        let endpoint = |l: &Listener| Endpoint {
            listener: l.name.clone(),
            host: if l.host.is_empty() {
                "localhost".to_string()
            } else {
                l.host.clone()
            },
            port: l.port,
            security_protocol: security_protocol_id(config.security_protocol_for(&l.name)),
        };
        let snapshots = SnapshotOptions::from_config(config);
        let metadata_log = &config.metadata_log;
        ControllerOptions {
            node_id: config.node_id,
            metadata_log_dir: config.effective_metadata_log_dir().to_path_buf(),
            directory_ids: meta.directory_id.into_iter().collect(),
            // A controller-only node is no broker: it never registers as one.
            endpoints: if config.is_broker() {
                config.broker_advertised_listeners().map(endpoint).collect()
            } else {
                Vec::new()
            },
            controller_endpoints: if config.is_controller() {
                config.controller_listeners().map(endpoint).collect()
            } else {
                Vec::new()
            },
            rack: config.broker_rack.clone(),
            num_partitions: config.num_partitions,
            default_replication_factor: config.default_replication_factor,
            delete_topic_enable: config.delete_topic_enable,
            metadata_segment_bytes: metadata_log.segment_bytes.max(1) as u64,
            metadata_segment_ms: metadata_log.segment_ms,
            snapshots,
            static_configs: config.properties().clone(),
            cluster_id: meta.cluster_id.clone(),
            broker_session_timeout_ms: config.broker_session_timeout_ms.max(1) as u64,
        }
    }

    /// Options for tests and tools: node `node_id`, metadata in `metadata_log_dir`, one
    /// log directory `directory_id`, a PLAINTEXT endpoint `localhost:9092`, Kafka's
    /// defaults otherwise.
    pub fn new(node_id: i32, metadata_log_dir: PathBuf, directory_id: Uuid) -> ControllerOptions {
        ControllerOptions {
            node_id,
            metadata_log_dir,
            directory_ids: vec![directory_id],
            endpoints: vec![Endpoint {
                listener: "PLAINTEXT".to_string(),
                host: "localhost".to_string(),
                port: 9092,
                security_protocol: 0,
            }],
            controller_endpoints: Vec::new(),
            rack: None,
            num_partitions: 1,
            default_replication_factor: 1,
            delete_topic_enable: true,
            metadata_segment_bytes: DEFAULT_SEGMENT_BYTES,
            metadata_segment_ms: DEFAULT_SEGMENT_MS,
            snapshots: SnapshotOptions::default(),
            static_configs: BTreeMap::new(),
            cluster_id: String::new(),
            broker_session_timeout_ms: 9000,
        }
    }
}

/// The `transaction.version` levels served (Kafka's `TransactionVersion`: 0 the original
/// protocol, 1 flexible `__transaction_state` values, 2 KIP-890's epoch bump per
/// transaction); none depends on another feature.
pub const MAX_TRANSACTION_VERSION: i16 = 2;

/// The `transaction.version` a new cluster is formatted with: the highest level whose
/// bootstrap `metadata.version` (4.0-IV2, 24, for levels 1 and 2) is at most
/// [`METADATA_VERSION`], as Kafka's `Features.defaultLevel`.
pub const BOOTSTRAP_TRANSACTION_VERSION: i16 = if METADATA_VERSION >= 24 {
    MAX_TRANSACTION_VERSION
} else {
    0
};

/// The `group.version` levels served (Kafka's `GroupVersion`: 1 turns on the consumer
/// group protocol of KIP-848).
pub const MAX_GROUP_VERSION: i16 = 1;

/// The feature of the consumer group protocol.
pub const GROUP_VERSION_FEATURE: &str = "group.version";

/// The `group.version` a new cluster is formatted with: 1 from `metadata.version`
/// 4.0-IV0 (22), as Kafka's `GroupVersion.GV_1` bootstraps.
pub const BOOTSTRAP_GROUP_VERSION: i16 = if METADATA_VERSION >= 22 {
    MAX_GROUP_VERSION
} else {
    0
};

/// The features this node supports, as registered: `metadata.version` from
/// [`MIN_METADATA_VERSION`] to [`MAX_METADATA_VERSION`], `kraft.version` 0,
/// `transaction.version` 0 to [`MAX_TRANSACTION_VERSION`].
pub fn supported_features() -> BTreeMap<String, VersionRange> {
    BTreeMap::from([
        (
            GROUP_VERSION_FEATURE.to_string(),
            VersionRange {
                min: 0,
                max: MAX_GROUP_VERSION,
            },
        ),
        (
            crate::transactions::TRANSACTION_VERSION_FEATURE.to_string(),
            VersionRange {
                min: 0,
                max: MAX_TRANSACTION_VERSION,
            },
        ),
        (
            KRAFT_VERSION_FEATURE.to_string(),
            VersionRange { min: 0, max: 0 },
        ),
        (
            METADATA_VERSION_FEATURE.to_string(),
            VersionRange {
                min: MIN_METADATA_VERSION,
                max: MAX_METADATA_VERSION,
            },
        ),
    ])
}

/// What [`Controller::open`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartupReport {
    /// What opening the log did (truncation, new epoch, aborted transaction).
    pub log: OpenReport,
    /// Whether the bootstrap records were written (a fresh log).
    pub bootstrapped: bool,
    /// Offset of the `RegisterBrokerRecord` written, if the registration changed.
    pub registered_broker: Option<i64>,
    /// Offset of the `RegisterControllerRecord` written, if the registration changed.
    pub registered_controller: Option<i64>,
    /// The finalized `metadata.version`.
    pub metadata_version: i16,
}

// ---------------------------------------------------------------------------------------
// Requests and results
// ---------------------------------------------------------------------------------------

/// A manual assignment of a partition's replicas (CreateTopics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaAssignment {
    /// The partition index.
    pub partition: i32,
    /// The brokers holding its replicas, the first is the preferred leader.
    pub broker_ids: Vec<i32>,
}

/// A topic to create (CreateTopics' `CreatableTopic`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTopic {
    /// The name.
    pub name: String,
    /// The partition count, -1 for `num.partitions` (must be -1 with assignments).
    pub num_partitions: i32,
    /// The replication factor, -1 for `default.replication.factor` (must be -1 with
    /// assignments).
    pub replication_factor: i16,
    /// Manual assignments (empty for automatic placement).
    pub assignments: Vec<ReplicaAssignment>,
    /// Topic configs; null values are ignored, as Kafka's controller does.
    pub configs: Vec<(String, Option<String>)>,
}

impl NewTopic {
    /// A topic with automatic placement and no configs.
    pub fn new(name: impl Into<String>, num_partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            num_partitions,
            replication_factor,
            assignments: Vec::new(),
            configs: Vec::new(),
        }
    }

    /// The same topic with config `key` set to `value`.
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> NewTopic {
        self.configs.push((key.into(), Some(value.into())));
        self
    }
}

/// The result for one topic of [`Controller::create_topics`] (CreateTopics'
/// `CreatableTopicResult`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateTopicResult {
    /// The name.
    pub name: String,
    /// The error, `None` on success.
    pub error: Option<ApiError>,
    /// The new topic's id (nil on error and for `validate_only`).
    pub topic_id: Uuid,
    /// The partition count (-1 on error).
    pub num_partitions: i32,
    /// The replication factor (-1 on error).
    pub replication_factor: i16,
    /// Every topic config with its value and source (empty on error).
    pub configs: Vec<DescribedConfig>,
}

impl CreateTopicResult {
    fn failed(name: &str, error: ApiError) -> CreateTopicResult {
        CreateTopicResult {
            name: name.to_string(),
            error: Some(error),
            topic_id: Uuid::nil(),
            num_partitions: -1,
            replication_factor: -1,
            configs: Vec::new(),
        }
    }
}

/// A topic to delete, by name or by id (DeleteTopics).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TopicRef {
    /// By name.
    Name(String),
    /// By id.
    Id(Uuid),
}

/// The result for one topic of [`Controller::delete_topics`] (DeleteTopics'
/// `DeletableTopicResult`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteTopicResult {
    /// The name (`None` when given by an id that does not resolve).
    pub name: Option<String>,
    /// The id (nil when given by a name that does not resolve).
    pub topic_id: Uuid,
    /// The error, `None` on success.
    pub error: Option<ApiError>,
}

/// Partitions to add to a topic (CreatePartitions' `CreatePartitionsTopic`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPartitions {
    /// The topic.
    pub topic: String,
    /// The new total partition count.
    pub count: i32,
    /// Replicas of each new partition, or `None` for automatic placement.
    pub assignments: Option<Vec<Vec<i32>>>,
}

/// The result for one topic of [`Controller::create_partitions`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatePartitionsResult {
    /// The topic.
    pub topic: String,
    /// The error, `None` on success.
    pub error: Option<ApiError>,
}

/// An IncrementalAlterConfigs operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlterConfigOp {
    /// Set the value (0).
    Set,
    /// Remove the override (1).
    Delete,
    /// Add items to a list (2).
    Append,
    /// Remove items from a list (3).
    Subtract,
}

impl AlterConfigOp {
    /// The operation for a wire value.
    pub fn from_i8(value: i8) -> Option<AlterConfigOp> {
        match value {
            0 => Some(AlterConfigOp::Set),
            1 => Some(AlterConfigOp::Delete),
            2 => Some(AlterConfigOp::Append),
            3 => Some(AlterConfigOp::Subtract),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            AlterConfigOp::Set => "SET",
            AlterConfigOp::Delete => "DELETE",
            AlterConfigOp::Append => "APPEND",
            AlterConfigOp::Subtract => "SUBTRACT",
        }
    }
}

/// One config change of a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigChange {
    /// The config name.
    pub name: String,
    /// The operation.
    pub op: AlterConfigOp,
    /// The value (ignored by DELETE).
    pub value: Option<String>,
}

/// The config changes of one resource (IncrementalAlterConfigs' `AlterConfigsResource`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterConfigsResource {
    /// The resource type ([`ConfigResource::TOPIC`] or [`ConfigResource::BROKER`]).
    pub resource_type: i8,
    /// The resource name (the topic).
    pub name: String,
    /// The changes.
    pub changes: Vec<ConfigChange>,
}

/// The result for one resource of [`Controller::incremental_alter_configs`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterConfigsResult {
    /// The resource type.
    pub resource_type: i8,
    /// The resource name.
    pub name: String,
    /// The error, `None` on success.
    pub error: Option<ApiError>,
}

/// A partition the broker must now create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedPartition {
    /// The topic name.
    pub topic: String,
    /// The topic id (for `partition.metadata`).
    pub topic_id: Uuid,
    /// The partition index.
    pub partition: i32,
    /// The topic's config overrides (see [`topic_config::log_config`]).
    pub config: BTreeMap<String, String>,
}

/// A topic whose partitions the broker must now delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedTopic {
    /// The name.
    pub name: String,
    /// The id.
    pub id: Uuid,
    /// Its partition indexes.
    pub partitions: Vec<i32>,
}

/// A topic whose config overrides changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconfiguredTopic {
    /// The name.
    pub name: String,
    /// The id.
    pub id: Uuid,
    /// Its overrides now.
    pub config: BTreeMap<String, String>,
}

/// Makes the logs of new partitions before the records creating them are written (see the
/// module docs). Called under the controller's lock, one topic at a time.
pub trait PartitionStore {
    /// Creates the logs of `partitions` (all of one topic). On error none of them remains.
    fn prepare(&self, partitions: &[CreatedPartition]) -> Result<(), ApiError>;
    /// Removes the logs [`Self::prepare`] made for records that could not be written.
    fn abort(&self, partitions: &[CreatedPartition]);
}

/// A [`PartitionStore`] with nothing to make: the controller alone (tests, tools).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLogs;

impl PartitionStore for NoLogs {
    fn prepare(&self, _partitions: &[CreatedPartition]) -> Result<(), ApiError> {
        Ok(())
    }

    fn abort(&self, _partitions: &[CreatedPartition]) {}
}

/// The topic changes an operation made durable, for the broker to apply to its partition
/// logs. Empty for `validate_only` and failed operations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicDelta {
    /// Partitions created (new topics and added partitions).
    pub created: Vec<CreatedPartition>,
    /// Topics deleted.
    pub deleted: Vec<DeletedTopic>,
    /// Topics whose configs changed.
    pub reconfigured: Vec<ReconfiguredTopic>,
}

impl TopicDelta {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.deleted.is_empty() && self.reconfigured.is_empty()
    }
}

/// The outcome of an operation: one result per item, and what changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied<T> {
    /// One result per item (duplicates get one result).
    pub results: Vec<T>,
    /// What changed.
    pub delta: TopicDelta,
    /// Offsets of the first and last record written, if anything was written.
    pub offsets: Option<(i64, i64)>,
}

// ---------------------------------------------------------------------------------------
// The controller
// ---------------------------------------------------------------------------------------

/// This node's KRaft controller (see the module docs).
#[derive(Debug)]
pub struct Controller {
    options: ControllerOptions,
    /// Shared with the snapshot thread, which applies retention once a snapshot is written.
    log: Arc<Mutex<Backend>>,
    /// The image of a single node (in quorum mode the quorum's state machine holds it).
    image: ArcSwap<MetadataImage>,
    snapshots: Mutex<snapshots::SnapshotState>,
    /// The rest of the producer-id block this node handed out last: `[next, end)`.
    producer_ids: Mutex<Option<(i64, i64)>>,
    /// Brokers' sessions (see `brokers.rs`). Taken after the log lock, never before.
    members: Mutex<heartbeats::Heartbeats>,
    /// Every published image, for those that follow the metadata (the broker's publisher).
    published: tokio::sync::watch::Sender<Arc<MetadataImage>>,
    /// The cluster's quorum (`Config::is_cluster`), also inside the locked [`Backend`]
    /// (kept here for reads that must not wait for the lock).
    quorum: Option<QuorumBackend>,
    /// What a broker-only node of a cluster follows the metadata with (`observing.rs`).
    observer: Option<crate::cluster::observer::Observer>,
}

/// Applies `records` to `image` at the log's next offsets (checking them), appends them as
/// one batch and fsyncs it; `image` is changed only when everything succeeded.
fn commit_to(
    log: &mut MetadataLog,
    image: &mut MetadataImage,
    records: Vec<VersionedRecord>,
) -> Result<(i64, i64), ControllerError> {
    let mut next = image.clone();
    let base = log.next_offset();
    let epoch = log.epoch();
    for (i, versioned) in records.iter().enumerate() {
        next.apply_with_epoch(base + i as i64, epoch, &versioned.record)?;
    }
    let appended = log.append(&records)?;
    debug_assert_eq!(appended.base_offset, base);
    *image = next;
    Ok((appended.base_offset, appended.last_offset))
}

pub(super) fn v0(record: MetadataRecord) -> VersionedRecord {
    VersionedRecord { version: 0, record }
}

/// The bootstrap records of a fresh log.
fn bootstrap_records() -> Vec<VersionedRecord> {
    vec![
        v0(MetadataRecord::BeginTransaction(BeginTransactionRecord {
            name: Some(BOOTSTRAP_TRANSACTION.into()),
            ..Default::default()
        })),
        v0(MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: METADATA_VERSION_FEATURE.into(),
            feature_level: METADATA_VERSION,
            ..Default::default()
        })),
        // The other features in name order, as Kafka's formatter writes them.
        v0(MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: GROUP_VERSION_FEATURE.into(),
            feature_level: BOOTSTRAP_GROUP_VERSION,
            ..Default::default()
        })),
        v0(MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: crate::transactions::TRANSACTION_VERSION_FEATURE.into(),
            feature_level: BOOTSTRAP_TRANSACTION_VERSION,
            ..Default::default()
        })),
        v0(MetadataRecord::EndTransaction(
            EndTransactionRecord::default(),
        )),
    ]
}

/// The bootstrap transaction of a fresh log: [`bootstrap_records`] with the SCRAM
/// credentials of `gregor.bootstrap.scram` (as `kafka-storage format --add-scram`) inside
/// it (checked at start-up; a bad value adds nothing).
fn bootstrap_batch(options: &ControllerOptions) -> Vec<VersionedRecord> {
    let mut records = bootstrap_records();
    if let Some(text) = options.static_configs.get("gregor.bootstrap.scram") {
        let credentials = crate::security::bootstrap_scram::parse(text).unwrap_or_default();
        let end = records.pop();
        records.extend(
            crate::security::bootstrap_scram::records(&credentials)
                .into_iter()
                .map(|r| v0(MetadataRecord::UserScramCredential(r))),
        );
        records.extend(end);
    }
    records
}

/// A new `RegisterBrokerRecord` for this node at `offset`, unless the image already has
/// an unfenced registration with the same endpoints, rack, features and directories.
fn broker_registration(
    options: &ControllerOptions,
    endpoints: &[Endpoint],
    image: &MetadataImage,
    offset: i64,
) -> Option<VersionedRecord> {
    if endpoints.is_empty() {
        return None;
    }
    let features = supported_features();
    if let Some(current) = image.broker(options.node_id)
        && !current.fenced
        && !current.in_controlled_shutdown
        && current.endpoints == endpoints
        && current.rack == options.rack
        && current.supported_features == features
        && current.directories == options.directory_ids
    {
        return None;
    }
    let record = RegisterBrokerRecord {
        broker_id: options.node_id,
        is_migrating_zk_broker: false,
        incarnation_id: random_uuid(),
        broker_epoch: offset,
        end_points: endpoints
            .iter()
            .map(|e| BrokerEndpoint {
                name: e.listener.as_str().into(),
                host: e.host.as_str().into(),
                port: e.port,
                security_protocol: e.security_protocol,
                ..Default::default()
            })
            .collect(),
        features: features
            .iter()
            .map(|(name, range)| BrokerFeature {
                name: name.as_str().into(),
                min_supported_version: range.min,
                max_supported_version: range.max,
                ..Default::default()
            })
            .collect(),
        rack: options.rack.as_deref().map(Into::into),
        fenced: false,
        in_controlled_shutdown: false,
        log_dirs: options.directory_ids.clone(),
        cordoned_log_dirs: None,
        ..Default::default()
    };
    Some(VersionedRecord {
        version: REGISTER_BROKER_RECORD_VERSION,
        record: MetadataRecord::RegisterBroker(record),
    })
}

/// A new `RegisterControllerRecord` for this node, unless the image has the same one.
fn controller_registration(
    options: &ControllerOptions,
    image: &MetadataImage,
) -> Option<VersionedRecord> {
    if options.controller_endpoints.is_empty() {
        return None;
    }
    let features = supported_features();
    if let Some(current) = image.controllers().get(&options.node_id)
        && current.endpoints == options.controller_endpoints
        && current.supported_features == features
    {
        return None;
    }
    let record = RegisterControllerRecord {
        controller_id: options.node_id,
        incarnation_id: random_uuid(),
        zk_migration_ready: false,
        end_points: options
            .controller_endpoints
            .iter()
            .map(|e| ControllerEndpoint {
                name: e.listener.as_str().into(),
                host: e.host.as_str().into(),
                port: e.port,
                security_protocol: e.security_protocol,
                ..Default::default()
            })
            .collect(),
        features: features
            .iter()
            .map(|(name, range)| ControllerFeature {
                name: name.as_str().into(),
                min_supported_version: range.min,
                max_supported_version: range.max,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    Some(VersionedRecord {
        version: REGISTER_CONTROLLER_RECORD_VERSION,
        record: MetadataRecord::RegisterController(record),
    })
}

/// Kafka's `Topic.validate` message for an illegal name.
pub fn invalid_topic_message(name: &str, error: &InvalidName) -> String {
    match error {
        InvalidName::Empty => "Topic name is illegal, it can't be empty".to_string(),
        InvalidName::Dots => "Topic name cannot be \".\" or \"..\"".to_string(),
        InvalidName::TooLong(_) => format!(
            "Topic name is illegal, it can't be longer than {} characters, Topic name: {name}",
            topic_names::MAX_LENGTH
        ),
        InvalidName::IllegalCharacter(_) => format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII \
             alphanumerics, '.', '_' and '-'"
        ),
    }
}

fn validate_name(name: &str) -> Result<(), ApiError> {
    topic_names::validate(name)
        .map_err(|e| ApiError::new(INVALID_TOPIC_EXCEPTION, invalid_topic_message(name, &e)))
}

/// Whether broker `id` can lead and be in ISRs (registered, unfenced, not shutting down).
fn is_active(image: &MetadataImage, id: i32) -> bool {
    image
        .broker(id)
        .is_some_and(|b| !b.fenced && !b.in_controlled_shutdown)
}

/// Kafka's `ClusterControlManager.defaultDir`: the broker's only directory, `MIGRATING`
/// if it has none, `UNASSIGNED` if it has several (it picks one itself) or is unknown.
fn default_dir(image: &MetadataImage, broker: i32) -> Uuid {
    match image.broker(broker) {
        None => DIRECTORY_UNASSIGNED,
        Some(b) if b.directories.is_empty() => DIRECTORY_MIGRATING,
        Some(b) if b.directories.len() == 1 => b.directories[0],
        Some(_) => DIRECTORY_UNASSIGNED,
    }
}

/// Places `count` partitions, `replication_factor` replicas each, on the usable brokers
/// with Kafka's `StripedReplicaPlacer` (see `controller/placement.rs`); the error is the
/// placer's message.
fn place_replicas(
    image: &MetadataImage,
    count: i32,
    replication_factor: i16,
) -> Result<Vec<Vec<i32>>, String> {
    placement::place(image, count, replication_factor)
}

/// Kafka's `validateManualPartitionAssignment`.
fn validate_manual_assignment(
    image: &MetadataImage,
    replicas: &[i32],
    replication_factor: Option<usize>,
) -> Result<(), ApiError> {
    let fail = |message: String| Err(ApiError::new(INVALID_REPLICA_ASSIGNMENT, message));
    if replicas.is_empty() {
        return fail("The manual partition assignment includes an empty replica list.".into());
    }
    let mut sorted = replicas.to_vec();
    sorted.sort_unstable();
    let mut previous = None;
    for broker in sorted {
        if image.broker(broker).is_none() {
            return fail(format!(
                "The manual partition assignment includes broker {broker}, but no such broker \
                 is registered."
            ));
        }
        if previous == Some(broker) {
            return fail(format!(
                "The manual partition assignment includes the broker {broker} more than once."
            ));
        }
        previous = Some(broker);
    }
    if let Some(rf) = replication_factor
        && replicas.len() != rf
    {
        return fail(format!(
            "The manual partition assignment includes a partition with {} replica(s), but this \
             is not consistent with previous partitions, which have {rf} replica(s).",
            replicas.len()
        ));
    }
    Ok(())
}

/// The `PartitionRecord` of a new partition: leader the first active replica of the ISR,
/// epochs 0, each replica in its broker's default directory.
fn partition_record(
    image: &MetadataImage,
    topic_id: Uuid,
    partition: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
) -> VersionedRecord {
    let directories = replicas.iter().map(|b| default_dir(image, *b)).collect();
    let leader = isr.first().copied().unwrap_or(-1);
    VersionedRecord {
        version: PARTITION_RECORD_VERSION,
        record: MetadataRecord::Partition(PartitionRecord {
            partition_id: partition,
            topic_id,
            replicas,
            isr,
            removing_replicas: Vec::new(),
            adding_replicas: Vec::new(),
            leader,
            leader_recovery_state: 0,
            leader_epoch: 0,
            partition_epoch: 0,
            directories,
            eligible_leader_replicas: None,
            last_known_elr: None,
            ..Default::default()
        }),
    }
}

fn config_record(topic: &str, key: &str, value: Option<&str>) -> VersionedRecord {
    v0(MetadataRecord::Config(ConfigRecord {
        resource_type: ConfigResource::TOPIC,
        resource_name: topic.into(),
        name: key.into(),
        value: value.map(Into::into),
        ..Default::default()
    }))
}

/// The existing topic whose name differs from `name` only by `.` and `_`.
fn colliding_topic<'a>(image: &'a MetadataImage, name: &str) -> Option<&'a str> {
    let key = topic_names::collision_key(name);
    image
        .topics()
        .map(|t| t.name.as_str())
        .find(|existing| *existing != name && topic_names::collision_key(existing) == key)
}

/// A topic that passed every check.
struct TopicPlan {
    records: Vec<VersionedRecord>,
    result: CreateTopicResult,
    partitions: Vec<i32>,
    config: BTreeMap<String, String>,
}

/// Names that appear more than once, and the first occurrence of each name.
fn split_duplicates<'a, T>(
    items: &'a [T],
    name: impl Fn(&'a T) -> &'a str,
) -> (Vec<&'a T>, BTreeSet<&'a str>) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for item in items {
        *counts.entry(name(item)).or_default() += 1;
    }
    let mut seen = BTreeSet::new();
    let firsts = items
        .iter()
        .filter(|item| seen.insert(name(item)))
        .collect();
    let duplicates = counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(name, _)| name)
        .collect();
    (firsts, duplicates)
}

impl Controller {
    /// Opens the controller on what replay `loaded` from `options.metadata_log_dir`:
    /// opens the log (see [`MetadataLog::open`]), writes the bootstrap records on a fresh
    /// log and this node's registrations when they changed (see the module docs).
    /// Blocking file I/O.
    pub fn open(
        options: ControllerOptions,
        loaded: LoadedMetadata,
    ) -> Result<(Controller, StartupReport), ControllerError> {
        let log_options = MetadataLogOptions {
            segment_bytes: options.metadata_segment_bytes,
            segment_ms: options.metadata_segment_ms,
            ..MetadataLogOptions::new(options.node_id)
        };
        let (mut log, open_report) =
            MetadataLog::open(&options.metadata_log_dir, &loaded, log_options)?;
        // Kafka's recoverSnapshots, then a first retention pass.
        snapshot_retention::recover_snapshots(&log)?;
        snapshot_retention::maybe_clean(
            &mut log,
            options.snapshots.retention,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        )?;
        let snapshot_state =
            snapshots::SnapshotState::new(loaded.bytes_since_snapshot, loaded.kraft.clone());
        let mut image = loaded.image;
        if let Some(aborted) = open_report.aborted_transaction {
            // The image never held the transaction's records; it now reflects the abort.
            image.set_provenance(aborted.abort_offset, open_report.epoch);
        }
        let mut bootstrapped = false;
        match image.metadata_version() {
            None => {
                let records = bootstrap_batch(&options);
                commit_to(&mut log, &mut image, records)?;
                tracing::info!(
                    metadata_version = METADATA_VERSION,
                    "wrote the bootstrap records (metadata.version {METADATA_VERSION_NAME})"
                );
                bootstrapped = true;
            }
            Some(level) if level > METADATA_VERSION => tracing::warn!(
                level,
                "the metadata log has a newer metadata.version than this broker writes \
                 ({METADATA_VERSION}); new records are written at {METADATA_VERSION}"
            ),
            Some(level) if level < MIN_METADATA_VERSION => tracing::warn!(
                level,
                "the metadata log has a metadata.version older than {MIN_METADATA_VERSION}"
            ),
            Some(_) => {}
        }
        let mut registered_broker = None;
        if let Some(record) =
            broker_registration(&options, &options.endpoints, &image, log.next_offset())
        {
            let (offset, _) = commit_to(&mut log, &mut image, vec![record])?;
            tracing::info!(
                broker = options.node_id,
                epoch = offset,
                "registered the broker"
            );
            registered_broker = Some(offset);
        }
        let mut registered_controller = None;
        if let Some(record) = controller_registration(&options, &image) {
            let (offset, _) = commit_to(&mut log, &mut image, vec![record])?;
            registered_controller = Some(offset);
        }
        let report = StartupReport {
            log: open_report,
            bootstrapped,
            registered_broker,
            registered_controller,
            metadata_version: image.metadata_version().unwrap_or(METADATA_VERSION),
        };
        // Every registered broker gets a fresh session, as Kafka's controller gives them
        // when it becomes active (`ClusterControlManager.activate`).
        let mut members = heartbeats::Heartbeats::new(std::time::Duration::from_millis(
            options.broker_session_timeout_ms,
        ));
        let now = std::time::Instant::now();
        for broker in image.brokers().values() {
            members.register(broker.id, broker.fenced, now);
            if broker.id == options.node_id {
                members.touch(broker.id, broker.fenced, log.next_offset() - 1, now);
            }
        }
        let image = Arc::new(image);
        let controller = Controller {
            options,
            log: Arc::new(Mutex::new(Backend::Local(log))),
            published: tokio::sync::watch::Sender::new(Arc::clone(&image)),
            image: ArcSwap::new(image),
            snapshots: Mutex::new(snapshot_state),
            producer_ids: Mutex::new(None),
            members: Mutex::new(members),
            quorum: None,
            observer: None,
        };
        Ok((controller, report))
    }

    /// The current metadata image (what every handler reads).
    pub fn image(&self) -> Arc<MetadataImage> {
        if let Some(observer) = &self.observer {
            return observer.image();
        }
        match &self.quorum {
            Some(q) => q.quorum.image(),
            None => self.image.load_full(),
        }
    }

    /// A receiver of the image after each committed change (the current one first); in
    /// a cluster, after each entry of the committed log this node applied.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<MetadataImage>> {
        if let Some(observer) = &self.observer {
            return observer.subscribe();
        }
        match &self.quorum {
            Some(q) => q.quorum.subscribe(),
            None => self.published.subscribe(),
        }
    }

    /// Whether this node's controller is the active one, which alone commits metadata
    /// changes (always, on a single node; the quorum's leader in a cluster).
    pub fn is_active(&self) -> bool {
        if self.observer.is_some() {
            return false;
        }
        match &self.quorum {
            Some(q) => q.is_leader(),
            None => true,
        }
    }

    /// The id of the active controller, if one is known.
    pub fn active_controller_id(&self) -> Option<i32> {
        if let Some(observer) = &self.observer {
            return observer.leader();
        }
        match &self.quorum {
            Some(q) => q.quorum.leader(),
            None => Some(self.options.node_id),
        }
    }

    /// The metadata quorum, in a cluster.
    pub fn quorum(&self) -> Option<&crate::cluster::quorum::Quorum> {
        self.quorum.as_ref().map(|q| &q.quorum)
    }

    /// Whether this controller commits through a quorum of several nodes (`is_cluster`).
    pub fn is_cluster(&self) -> bool {
        self.quorum.is_some() || self.observer.is_some()
    }

    /// What a broker-only node of a cluster follows the metadata with.
    pub fn observer(&self) -> Option<&crate::cluster::observer::Observer> {
        self.observer.as_ref()
    }

    /// This node's id.
    pub fn node_id(&self) -> i32 {
        self.options.node_id
    }

    /// The options the controller was opened with.
    pub fn options(&self) -> &ControllerOptions {
        &self.options
    }

    /// The broker configs topic configs default to, for `image`.
    pub fn broker_configs<'a>(&'a self, image: &'a MetadataImage) -> BrokerConfigs<'a> {
        BrokerConfigs::new(image, self.options.node_id, &self.options.static_configs)
    }

    /// Offset the next record written gets.
    pub fn next_offset(&self) -> i64 {
        self.lock().next_offset()
    }

    /// The current epoch of the metadata log.
    pub fn epoch(&self) -> i32 {
        self.lock().epoch()
    }

    /// Runs `f` on a blocking thread (the operations do file I/O and fsync) and returns
    /// its result: `controller.run(move |c| c.create_topics(&topics, false)).await`.
    pub async fn run<T, F>(self: &Arc<Self>, f: F) -> T
    where
        F: FnOnce(&Controller) -> T + Send + 'static,
        T: Send + 'static,
    {
        let this = Arc::clone(self);
        match tokio::task::spawn_blocking(move || f(&this)).await {
            Ok(value) => value,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("controller task failed: {e}"),
            },
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Backend> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Commits `records` (see the module docs) and publishes the new image. The caller
    /// holds the log lock.
    pub(super) fn commit(
        &self,
        log: &mut Backend,
        records: Vec<VersionedRecord>,
    ) -> Result<Option<(i64, i64)>, ControllerError> {
        log.check_active()?;
        if records.is_empty() {
            return Ok(None);
        }
        let log = match log {
            Backend::Local(log) => log,
            Backend::Observer(o) => {
                return Err(ControllerError::NotController { active: o.leader() });
            }
            Backend::Quorum(q) => {
                let predicted = (records.len() == 1).then(|| q.quorum.log_end_offset());
                let (offsets, _image) = backend::commit_quorum(q, records, predicted)?;
                return Ok(Some(offsets));
            }
        };
        let mut image = MetadataImage::clone(&self.image());
        let offsets = commit_to(log, &mut image, records)?;
        let image = Arc::new(image);
        self.image.store(Arc::clone(&image));
        self.published.send_replace(Arc::clone(&image));
        self.maybe_snapshot(log, &image);
        Ok(Some(offsets))
    }

    /// Registers this broker again with `endpoints` (after binding listeners on port 0,
    /// say) if they differ from the current registration; returns the new broker epoch.
    pub fn update_broker_registration(
        &self,
        endpoints: Vec<Endpoint>,
    ) -> Result<Option<i64>, ControllerError> {
        let mut log = self.lock();
        log.check_active()?;
        let image = self.image();
        match broker_registration(&self.options, &endpoints, &image, log.next_offset()) {
            None => Ok(None),
            Some(record) => Ok(self
                .commit(&mut log, vec![record])?
                .map(|(offset, _)| offset)),
        }
    }

    /// A new producer id for an idempotent producer (InitProducerId without a transactional
    /// id). Ids come from blocks of [`PRODUCER_ID_BLOCK_SIZE`] that this node takes, as
    /// Kafka's `ProducerIdControlManager` hands them to brokers: taking a block appends a
    /// `ProducerIdsRecord` (this broker, its epoch, the first id of the next block), so ids
    /// are never reused across restarts; the rest of a block is lost at shutdown, as in
    /// Kafka. `UNKNOWN_SERVER_ERROR` when the ids are exhausted.
    pub fn allocate_producer_id(&self) -> Result<i64, ApiError> {
        let mut block = self
            .producer_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((next, end)) = block.as_mut()
            && *next < *end
        {
            let id = *next;
            *next += 1;
            return Ok(id);
        }
        let broker_epoch = self
            .image()
            .broker(self.options.node_id)
            .map_or(-1, |b| b.epoch);
        let (first, len) = self.allocate_producer_ids(self.options.node_id, broker_epoch, false)?;
        let end = first + i64::from(len);
        tracing::debug!(first, end, "took a block of producer ids");
        *block = Some((first + 1, end));
        Ok(first)
    }

    /// Hands broker `broker_id` the next block of producer ids (Kafka's
    /// `ProducerIdControlManager.generateNextProducerId`, behind AllocateProducerIds):
    /// a `ProducerIdsRecord` moves the cluster's next producer id past it. `check_epoch`:
    /// the broker's registration must have `broker_epoch` (STALE_BROKER_EPOCH otherwise);
    /// this node's own allocations skip it. Returns the block's first id and length.
    pub fn allocate_producer_ids(
        &self,
        broker_id: i32,
        broker_epoch: i64,
        check_epoch: bool,
    ) -> Result<(i64, i32), ApiError> {
        let mut log = self.lock();
        log.check_active().map_err(|e| e.to_api_error())?;
        let image = self.image();
        if check_epoch {
            brokers::check_broker_epoch(&image, broker_id, broker_epoch)?;
        }
        let first = image.next_producer_id().unwrap_or(0);
        if first > i64::MAX - PRODUCER_ID_BLOCK_SIZE {
            return Err(ApiError::new(
                UNKNOWN_SERVER_ERROR,
                "Exhausted all producerIds as the next block's end producerId has exceeded \
                 the int64 type limit",
            ));
        }
        let record = v0(MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id,
            broker_epoch,
            next_producer_id: first + PRODUCER_ID_BLOCK_SIZE,
            ..Default::default()
        }));
        self.commit(&mut log, vec![record])
            .map_err(|e| e.to_api_error())?;
        Ok((first, PRODUCER_ID_BLOCK_SIZE as i32))
    }

    /// Creates topics as Kafka's CreateTopics does (see the module docs for the checks and
    /// their order: duplicates in the request, the total partition count, the name,
    /// collisions, existence, configs, assignments, partition count and replication
    /// factor). All accepted topics are written in one batch: `TopicRecord`, its
    /// `ConfigRecord`s, then a `PartitionRecord` per partition. No logs are made: see
    /// [`Self::create_topics_with`].
    pub fn create_topics(
        &self,
        topics: &[NewTopic],
        validate_only: bool,
    ) -> Result<Applied<CreateTopicResult>, ControllerError> {
        self.create_topics_with(topics, validate_only, &NoLogs)
    }

    /// [`Self::create_topics`], with the logs of each accepted topic made by `store` before
    /// the batch is written; a topic whose logs cannot be made gets the store's error and
    /// is not written.
    pub fn create_topics_with(
        &self,
        topics: &[NewTopic],
        validate_only: bool,
        store: &dyn PartitionStore,
    ) -> Result<Applied<CreateTopicResult>, ControllerError> {
        self.create_topics_limited(topics, validate_only, store, &Unbounded)
    }

    /// [`Self::create_topics_with`], each topic that passes its checks charged to `quota`
    /// with its partition count (Kafka's `createTopic`: the quota is asked last, also for
    /// `validate_only`); a refused topic gets the quota's error and is not created.
    pub fn create_topics_limited(
        &self,
        topics: &[NewTopic],
        validate_only: bool,
        store: &dyn PartitionStore,
        quota: &dyn MutationQuota,
    ) -> Result<Applied<CreateTopicResult>, ControllerError> {
        let mut log = self.lock();
        log.check_active()?;
        let image = self.image();
        let (firsts, duplicates) = split_duplicates(topics, |t| t.name.as_str());
        let total: i64 = firsts
            .iter()
            .filter(|t| !duplicates.contains(t.name.as_str()))
            .map(|t| {
                if !t.assignments.is_empty() {
                    t.assignments.len() as i64
                } else if t.num_partitions == -1 {
                    i64::from(self.options.num_partitions)
                } else {
                    i64::from(t.num_partitions.max(0))
                }
            })
            .sum();
        let too_many = total > MAX_PARTITIONS_PER_REQUEST;
        let mut results = Vec::with_capacity(firsts.len());
        let mut plans = Vec::new();
        let mut pending_names: Vec<&str> = Vec::new();
        for topic in firsts {
            let name = topic.name.as_str();
            if duplicates.contains(name) {
                results.push(CreateTopicResult::failed(
                    name,
                    ApiError::new(INVALID_REQUEST, "Duplicate topic name."),
                ));
                continue;
            }
            if too_many {
                results.push(CreateTopicResult::failed(
                    name,
                    ApiError::new(
                        POLICY_VIOLATION,
                        "Excessively large number of partitions per request.",
                    ),
                ));
                continue;
            }
            // A topic this request creates counts as existing for the collision check.
            let key = topic_names::collision_key(name);
            if let Some(other) = pending_names
                .iter()
                .find(|other| topic_names::collision_key(other) == key)
            {
                results.push(CreateTopicResult::failed(
                    name,
                    ApiError::new(
                        INVALID_TOPIC_EXCEPTION,
                        format!("Topic '{name}' collides with existing topic: {other}"),
                    ),
                ));
                continue;
            }
            let planned = self
                .plan_topic(&image, topic, validate_only)
                .and_then(|plan| {
                    quota
                        .apply_partition_change(plan.partitions.len())
                        .map(|()| plan)
                });
            match planned {
                Ok(plan) => {
                    pending_names.push(name);
                    results.push(plan.result.clone());
                    plans.push(plan);
                }
                Err(error) => results.push(CreateTopicResult::failed(name, error)),
            }
        }
        if validate_only {
            return Ok(Applied {
                results,
                delta: TopicDelta::default(),
                offsets: None,
            });
        }
        let mut records = Vec::new();
        let mut delta = TopicDelta::default();
        let mut written = Vec::new();
        for plan in plans {
            let created: Vec<CreatedPartition> = plan
                .partitions
                .iter()
                .map(|&partition| CreatedPartition {
                    topic: plan.result.name.clone(),
                    topic_id: plan.result.topic_id,
                    partition,
                    config: plan.config.clone(),
                })
                .collect();
            if let Err(error) = store.prepare(&created) {
                tracing::error!(
                    topic = %plan.result.name,
                    "topic not created: {}",
                    error.message.as_deref().unwrap_or_default()
                );
                if let Some(result) = results.iter_mut().find(|r| r.name == plan.result.name) {
                    *result = CreateTopicResult::failed(&plan.result.name, error);
                }
                continue;
            }
            records.extend(plan.records.iter().cloned());
            delta.created.extend(created);
            written.push(plan);
        }
        let offsets = match self.commit(&mut log, records) {
            Ok(offsets) => offsets,
            Err(error) => {
                store.abort(&delta.created);
                return Err(error);
            }
        };
        for plan in written {
            tracing::info!(
                topic = %plan.result.name,
                id = %plan.result.topic_id,
                partitions = plan.result.num_partitions,
                "created topic"
            );
        }
        Ok(Applied {
            results,
            delta,
            offsets,
        })
    }

    /// Checks one topic of CreateTopics and builds its records.
    fn plan_topic(
        &self,
        image: &MetadataImage,
        topic: &NewTopic,
        validate_only: bool,
    ) -> Result<TopicPlan, ApiError> {
        let name = topic.name.as_str();
        validate_name(name)?;
        if image.topic(name).is_some() {
            return Err(ApiError::new(
                TOPIC_ALREADY_EXISTS,
                format!("Topic '{name}' already exists."),
            ));
        }
        if let Some(existing) = colliding_topic(image, name) {
            return Err(ApiError::new(
                INVALID_TOPIC_EXCEPTION,
                format!("Topic '{name}' collides with existing topic: {existing}"),
            ));
        }
        let config: BTreeMap<String, String> = topic
            .configs
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
            .collect();
        let broker = self.broker_configs(image);
        topic_config::validate(&config, &broker)
            .map_err(|e| ApiError::new(INVALID_CONFIG, e.message))?;

        // (replicas, isr) by partition index.
        let mut partitions: BTreeMap<i32, (Vec<i32>, Vec<i32>)> = BTreeMap::new();
        if !topic.assignments.is_empty() {
            if topic.replication_factor != -1 {
                return Err(ApiError::new(
                    INVALID_REQUEST,
                    "A manual partition assignment was specified, but replication factor was \
                     not set to -1.",
                ));
            }
            if topic.num_partitions != -1 {
                return Err(ApiError::new(
                    INVALID_REQUEST,
                    "A manual partition assignment was specified, but numPartitions was not set \
                     to -1.",
                ));
            }
            let mut replication_factor = None;
            for assignment in &topic.assignments {
                if partitions.contains_key(&assignment.partition) {
                    return Err(ApiError::new(
                        INVALID_REPLICA_ASSIGNMENT,
                        format!(
                            "Found multiple manual partition assignments for partition {}",
                            assignment.partition
                        ),
                    ));
                }
                validate_manual_assignment(image, &assignment.broker_ids, replication_factor)?;
                replication_factor = Some(assignment.broker_ids.len());
                let isr: Vec<i32> = assignment
                    .broker_ids
                    .iter()
                    .copied()
                    .filter(|b| is_active(image, *b))
                    .collect();
                if isr.is_empty() {
                    return Err(ApiError::new(
                        INVALID_REPLICA_ASSIGNMENT,
                        format!(
                            "All brokers specified in the manual partition assignment for \
                             partition {} are fenced or in controlled shutdown.",
                            assignment.partition
                        ),
                    ));
                }
                partitions.insert(assignment.partition, (assignment.broker_ids.clone(), isr));
            }
            if (0..partitions.len() as i32).any(|i| !partitions.contains_key(&i)) {
                return Err(ApiError::new(
                    INVALID_REPLICA_ASSIGNMENT,
                    "partitions should be a consecutive 0-based integer sequence",
                ));
            }
        } else if topic.replication_factor < -1 || topic.replication_factor == 0 {
            return Err(ApiError::new(
                INVALID_REPLICATION_FACTOR,
                "Replication factor must be larger than 0, or -1 to use the default value.",
            ));
        } else if topic.num_partitions < -1 || topic.num_partitions == 0 {
            return Err(ApiError::new(
                INVALID_PARTITIONS,
                "Number of partitions was set to an invalid non-positive value.",
            ));
        } else {
            let count = if topic.num_partitions == -1 {
                self.options.num_partitions
            } else {
                topic.num_partitions
            };
            let replication_factor = if topic.replication_factor == -1 {
                self.options.default_replication_factor
            } else {
                topic.replication_factor
            };
            let unable = |reason: String| {
                ApiError::new(
                    INVALID_REPLICATION_FACTOR,
                    format!(
                        "Unable to replicate the partition {replication_factor} time(s): {reason}"
                    ),
                )
            };
            let placements = place_replicas(image, count, replication_factor).map_err(unable)?;
            for (index, replicas) in placements.into_iter().enumerate() {
                let isr: Vec<i32> = replicas
                    .iter()
                    .copied()
                    .filter(|b| is_active(image, *b))
                    .collect();
                if isr.is_empty() {
                    return Err(unable(
                        "All brokers are currently fenced or in controlled shutdown.".to_string(),
                    ));
                }
                partitions.insert(index as i32, (replicas, isr));
            }
        }

        let topic_id = if validate_only {
            Uuid::nil()
        } else {
            loop {
                let id = random_uuid();
                if image.topic_by_id(&id).is_none() {
                    break id;
                }
            }
        };
        let replication_factor = partitions.values().next().map_or(0, |(r, _)| r.len()) as i16;
        let mut records = vec![v0(MetadataRecord::Topic(TopicRecord {
            name: name.into(),
            topic_id,
            ..Default::default()
        }))];
        for (key, value) in &config {
            records.push(config_record(name, key, Some(value)));
        }
        let indexes: Vec<i32> = partitions.keys().copied().collect();
        for (index, (replicas, isr)) in partitions {
            records.push(partition_record(image, topic_id, index, replicas, isr));
        }
        let result = CreateTopicResult {
            name: name.to_string(),
            error: None,
            topic_id,
            num_partitions: indexes.len() as i32,
            replication_factor,
            configs: topic_config::describe(&config, &broker, false, false),
        };
        Ok(TopicPlan {
            records,
            result,
            partitions: indexes,
            config,
        })
    }

    /// Deletes topics as Kafka's DeleteTopics does: `TOPIC_DELETION_DISABLED` for every
    /// topic when `delete.topic.enable` is false; `INVALID_REQUEST` for names or ids given
    /// twice and for a name that resolves to an id also given; `UNKNOWN_TOPIC_OR_PARTITION`
    /// and `UNKNOWN_TOPIC_ID` for unknown ones. Internal topics may be deleted (as with
    /// Kafka's KRaft controller). One `RemoveTopicRecord` per topic, in one batch.
    pub fn delete_topics(
        &self,
        topics: &[TopicRef],
    ) -> Result<Applied<DeleteTopicResult>, ControllerError> {
        self.delete_topics_limited(topics, &Unbounded)
    }

    /// [`Self::delete_topics`], each topic to delete charged to `quota` with its partition
    /// count (Kafka's `deleteTopic`); a refused topic gets the quota's error and stays.
    pub fn delete_topics_limited(
        &self,
        topics: &[TopicRef],
        quota: &dyn MutationQuota,
    ) -> Result<Applied<DeleteTopicResult>, ControllerError> {
        let mut log = self.lock();
        log.check_active()?;
        let image = self.image();
        let result = |name: Option<&str>, id: Uuid, error: Option<ApiError>| DeleteTopicResult {
            name: name.map(str::to_string),
            topic_id: id,
            error,
        };
        let mut results = Vec::new();
        if !self.options.delete_topic_enable {
            let disabled = ApiError::with_default_message(TOPIC_DELETION_DISABLED);
            for topic in topics {
                results.push(match topic {
                    TopicRef::Name(name) => result(Some(name), Uuid::nil(), Some(disabled.clone())),
                    TopicRef::Id(id) => result(None, *id, Some(disabled.clone())),
                });
            }
            return Ok(Applied {
                results,
                delta: TopicDelta::default(),
                offsets: None,
            });
        }
        let mut counts: HashMap<&TopicRef, usize> = HashMap::new();
        for topic in topics {
            *counts.entry(topic).or_default() += 1;
        }
        let mut seen = BTreeSet::new();
        let mut deleting: BTreeMap<Uuid, usize> = BTreeMap::new(); // id -> result index
        for topic in topics {
            if !seen.insert(topic) {
                continue;
            }
            let duplicate = counts[topic] > 1;
            match topic {
                TopicRef::Name(name) if duplicate => results.push(result(
                    Some(name),
                    Uuid::nil(),
                    Some(ApiError::new(INVALID_REQUEST, "Duplicate topic name.")),
                )),
                TopicRef::Id(id) if duplicate => results.push(result(
                    None,
                    *id,
                    Some(ApiError::new(INVALID_REQUEST, "Duplicate topic id.")),
                )),
                TopicRef::Id(id) if id.is_nil() => results.push(result(
                    None,
                    *id,
                    Some(ApiError::new(
                        INVALID_REQUEST,
                        "Neither topic name nor id were specified.",
                    )),
                )),
                TopicRef::Id(id) => match image.topic_by_id(id) {
                    None => results.push(result(
                        None,
                        *id,
                        Some(ApiError::with_default_message(UNKNOWN_TOPIC_ID)),
                    )),
                    Some(t) => {
                        if let Some(&other) = deleting.get(id) {
                            results[other].error = Some(ApiError::new(
                                INVALID_REQUEST,
                                "The provided topic name maps to an ID that was already supplied.",
                            ));
                            deleting.remove(id);
                            results.push(result(Some(&t.name), *id, results[other].error.clone()));
                        } else {
                            deleting.insert(*id, results.len());
                            results.push(result(Some(&t.name), *id, None));
                        }
                    }
                },
                TopicRef::Name(name) => match image.topic(name) {
                    None => results.push(result(
                        Some(name),
                        Uuid::nil(),
                        Some(ApiError::with_default_message(UNKNOWN_TOPIC_OR_PARTITION)),
                    )),
                    Some(t) => {
                        if let Some(&other) = deleting.get(&t.id) {
                            let error = ApiError::new(
                                INVALID_REQUEST,
                                "The provided topic name maps to an ID that was already supplied.",
                            );
                            results[other].error = Some(error.clone());
                            deleting.remove(&t.id);
                            results.push(result(Some(name), t.id, Some(error)));
                        } else {
                            deleting.insert(t.id, results.len());
                            results.push(result(Some(name), t.id, None));
                        }
                    }
                },
            }
        }
        let mut records = Vec::new();
        let mut delta = TopicDelta::default();
        for (id, &at) in &deleting {
            let Some(topic) = image.topic_by_id(id) else {
                continue;
            };
            if let Err(error) = quota.apply_partition_change(topic.partitions.len()) {
                results[at].error = Some(error);
                continue;
            }
            records.push(v0(MetadataRecord::RemoveTopic(RemoveTopicRecord {
                topic_id: *id,
                ..Default::default()
            })));
            delta.deleted.push(DeletedTopic {
                name: topic.name.clone(),
                id: *id,
                partitions: topic.partitions.keys().copied().collect(),
            });
        }
        let offsets = self.commit(&mut log, records)?;
        for deleted in &delta.deleted {
            tracing::info!(topic = %deleted.name, id = %deleted.id, "deleted topic");
        }
        Ok(Applied {
            results,
            delta,
            offsets,
        })
    }

    /// Adds partitions as Kafka's CreatePartitions does: `UNKNOWN_TOPIC_OR_PARTITION`,
    /// `INVALID_PARTITIONS` unless the count grows, `INVALID_REPLICA_ASSIGNMENT` for
    /// assignments of the wrong number, size or brokers, `INVALID_REQUEST` for a topic given
    /// twice. The new partitions have the replication factor of the topic's first partition.
    /// No logs are made: see [`Self::create_partitions_with`].
    pub fn create_partitions(
        &self,
        topics: &[NewPartitions],
        validate_only: bool,
    ) -> Result<Applied<CreatePartitionsResult>, ControllerError> {
        self.create_partitions_with(topics, validate_only, &NoLogs)
    }

    /// [`Self::create_partitions`], with the logs of each topic's new partitions made by
    /// `store` before the batch is written; a topic whose logs cannot be made gets the
    /// store's error and keeps its partitions.
    pub fn create_partitions_with(
        &self,
        topics: &[NewPartitions],
        validate_only: bool,
        store: &dyn PartitionStore,
    ) -> Result<Applied<CreatePartitionsResult>, ControllerError> {
        self.create_partitions_limited(topics, validate_only, store, &Unbounded)
    }

    /// [`Self::create_partitions_with`], each topic that passes its checks charged to
    /// `quota` with the partitions it adds (Kafka's `createPartitions`, also for
    /// `validate_only`); a refused topic gets the quota's error and keeps its partitions.
    pub fn create_partitions_limited(
        &self,
        topics: &[NewPartitions],
        validate_only: bool,
        store: &dyn PartitionStore,
        quota: &dyn MutationQuota,
    ) -> Result<Applied<CreatePartitionsResult>, ControllerError> {
        let mut log = self.lock();
        log.check_active()?;
        let image = self.image();
        let (firsts, duplicates) = split_duplicates(topics, |t| t.topic.as_str());
        let mut results = Vec::new();
        let mut records = Vec::new();
        let mut delta = TopicDelta::default();
        let mut total_added: i64 = 0;
        for topic in firsts {
            let outcome = if duplicates.contains(topic.topic.as_str()) {
                Err(ApiError::new(INVALID_REQUEST, "Duplicate topic name."))
            } else {
                self.plan_partitions(&image, topic, &mut total_added)
                    .and_then(|(records, created)| {
                        quota
                            .apply_partition_change(created.len())
                            .map(|()| (records, created))
                    })
            };
            let outcome = match outcome {
                Ok((records, created)) if !validate_only => match store.prepare(&created) {
                    Ok(()) => Ok((records, created)),
                    Err(error) => {
                        tracing::error!(
                            topic = %topic.topic,
                            "partitions not created: {}",
                            error.message.as_deref().unwrap_or_default()
                        );
                        Err(error)
                    }
                },
                other => other,
            };
            match outcome {
                Ok((mut new_records, created)) => {
                    records.append(&mut new_records);
                    delta.created.extend(created);
                    results.push(CreatePartitionsResult {
                        topic: topic.topic.clone(),
                        error: None,
                    });
                }
                Err(error) => results.push(CreatePartitionsResult {
                    topic: topic.topic.clone(),
                    error: Some(error),
                }),
            }
        }
        if validate_only {
            return Ok(Applied {
                results,
                delta: TopicDelta::default(),
                offsets: None,
            });
        }
        let offsets = match self.commit(&mut log, records) {
            Ok(offsets) => offsets,
            Err(error) => {
                store.abort(&delta.created);
                return Err(error);
            }
        };
        Ok(Applied {
            results,
            delta,
            offsets,
        })
    }

    /// Checks one topic of CreatePartitions and builds its records.
    fn plan_partitions(
        &self,
        image: &MetadataImage,
        request: &NewPartitions,
        total_added: &mut i64,
    ) -> Result<(Vec<VersionedRecord>, Vec<CreatedPartition>), ApiError> {
        let Some(topic) = image.topic(&request.topic) else {
            return Err(ApiError::with_default_message(UNKNOWN_TOPIC_OR_PARTITION));
        };
        let current = topic.partitions.len() as i32;
        if request.count == current {
            return Err(ApiError::new(
                INVALID_PARTITIONS,
                format!("Topic already has {current} partition(s)."),
            ));
        }
        if request.count < current {
            return Err(ApiError::new(
                INVALID_PARTITIONS,
                format!(
                    "The topic {} currently has {current} partition(s); {} would not be an \
                     increase.",
                    request.topic, request.count
                ),
            ));
        }
        let additional = request.count - current;
        if let Some(assignments) = &request.assignments
            && assignments.len() != additional as usize
        {
            return Err(ApiError::new(
                INVALID_REPLICA_ASSIGNMENT,
                format!(
                    "Attempted to add {additional} additional partition(s), but only {} \
                     assignment(s) were specified.",
                    assignments.len()
                ),
            ));
        }
        if *total_added + i64::from(additional) > MAX_PARTITIONS_PER_REQUEST {
            return Err(ApiError::new(
                POLICY_VIOLATION,
                "Excessively large number of partitions per request.",
            ));
        }
        let Some(first) = topic.partitions.values().next() else {
            return Err(ApiError::new(
                UNKNOWN_SERVER_ERROR,
                format!(
                    "Invalid state: topic {} appears to have no partitions.",
                    request.topic
                ),
            ));
        };
        let replication_factor = first.replicas.len();
        let start = topic.partitions.keys().max().map_or(0, |m| m + 1);
        let mut placements = Vec::new();
        match &request.assignments {
            Some(assignments) => {
                for (i, replicas) in assignments.iter().enumerate() {
                    validate_manual_assignment(image, replicas, Some(replication_factor))?;
                    let isr: Vec<i32> = replicas
                        .iter()
                        .copied()
                        .filter(|b| is_active(image, *b))
                        .collect();
                    if isr.is_empty() {
                        return Err(ApiError::new(
                            INVALID_REPLICA_ASSIGNMENT,
                            format!(
                                "All brokers specified in the manual partition assignment for \
                                 partition {} are fenced or in controlled shutdown.",
                                start + i as i32
                            ),
                        ));
                    }
                    placements.push((replicas.clone(), isr));
                }
            }
            None => {
                let rf = replication_factor as i16;
                let placed = place_replicas(image, additional, rf).map_err(|reason| {
                    ApiError::new(
                        INVALID_REPLICATION_FACTOR,
                        format!("Unable to replicate the partition {rf} time(s): {reason}"),
                    )
                })?;
                for replicas in placed {
                    let isr = replicas
                        .iter()
                        .copied()
                        .filter(|b| is_active(image, *b))
                        .collect();
                    placements.push((replicas, isr));
                }
            }
        }
        *total_added += i64::from(additional);
        let config = image.topic_config(&topic.name).cloned().unwrap_or_default();
        let mut records = Vec::new();
        let mut created = Vec::new();
        for (i, (replicas, isr)) in placements.into_iter().enumerate() {
            let index = start + i as i32;
            records.push(partition_record(image, topic.id, index, replicas, isr));
            created.push(CreatedPartition {
                topic: topic.name.clone(),
                topic_id: topic.id,
                partition: index,
                config: config.clone(),
            });
        }
        Ok((records, created))
    }

    /// Alters topic configs as Kafka's IncrementalAlterConfigs does: SET, DELETE, APPEND
    /// and SUBTRACT (the last two on LIST configs only, starting from Kafka's default when
    /// the topic does not set the config), then [`topic_config::validate`] on the topic's
    /// resulting configs (`INVALID_CONFIG`), then the topic must exist
    /// (`UNKNOWN_TOPIC_OR_PARTITION`). A `ConfigRecord` per changed key, all resources in
    /// one batch. BROKER resources: see `alter_configs` (checked by the broker first).
    /// CLIENT_METRICS resources are checked and written by
    /// [`super::client_metrics::plan_alter`]. Resources of other known types get
    /// `INVALID_REQUEST` (not supported
    /// here), of unknown types `UNSUPPORTED_VERSION`; a resource given twice
    /// `INVALID_REQUEST`.
    pub fn incremental_alter_configs(
        &self,
        resources: &[AlterConfigsResource],
        validate_only: bool,
    ) -> Result<Applied<AlterConfigsResult>, ControllerError> {
        self.alter_resources(
            resources,
            |r| (r.resource_type, r.name.as_str()),
            validate_only,
            |image, resource| {
                if ![
                    ConfigResource::TOPIC,
                    ConfigResource::BROKER,
                    ConfigResource::BROKER_LOGGER,
                    ConfigResource::CLIENT_METRICS,
                    ConfigResource::GROUP,
                ]
                .contains(&resource.resource_type)
                {
                    Err(ApiError::new(
                        UNSUPPORTED_VERSION,
                        format!("Unknown resource type {}.", resource.resource_type),
                    ))
                } else if resource.resource_type == ConfigResource::BROKER {
                    self.plan_alter_broker(image, resource)
                        .map(|records| (records, None))
                } else if resource.resource_type == ConfigResource::CLIENT_METRICS {
                    super::client_metrics::plan_alter(image, resource).map(|r| (r, None))
                } else if resource.resource_type == ConfigResource::GROUP {
                    let bounds =
                        crate::group_config::Bounds::from_properties(&self.options.static_configs);
                    super::group_configs::plan_alter(image, resource, &bounds).map(|r| (r, None))
                } else if resource.resource_type != ConfigResource::TOPIC {
                    Err(ApiError::new(
                        INVALID_REQUEST,
                        format!(
                            "Altering configs of resource type {} is not supported by this broker.",
                            resource.resource_type
                        ),
                    ))
                } else {
                    self.plan_alter_topic(image, resource)
                }
            },
        )
    }

    /// Checks the config changes of one topic and builds their records.
    fn plan_alter_topic(
        &self,
        image: &MetadataImage,
        resource: &AlterConfigsResource,
    ) -> Result<alter_configs::Planned, ApiError> {
        let name = resource.name.as_str();
        alter_configs::check_unique_names(resource.changes.iter().map(|c| c.name.as_str()))?;
        alter_configs::check_no_nulls(
            resource
                .changes
                .iter()
                .filter(|c| c.op != AlterConfigOp::Delete && c.value.is_none())
                .map(|c| c.name.as_str()),
        )?;
        let current = image.topic_config(name).cloned().unwrap_or_default();
        let mut next = current.clone();
        alter_configs::apply_changes(
            &mut next,
            &resource.changes,
            |key| {
                topic_config::definition(key)
                    .filter(|d| d.is_list())
                    .map(|d| d.default)
            },
            alter_configs::merge_list,
        )?;
        if name.is_empty() {
            return Err(ApiError::new(
                INVALID_REQUEST,
                "Default topic resources are not allowed.",
            ));
        }
        validate_name(name)?;
        topic_config::validate(&next, &self.broker_configs(image))
            .map_err(|e| ApiError::new(INVALID_CONFIG, e.message))?;
        let Some(topic) = image.topic(name) else {
            return Err(ApiError::new(
                UNKNOWN_TOPIC_OR_PARTITION,
                format!("The topic '{name}' does not exist."),
            ));
        };
        let records = changed_config_records(ConfigResource::TOPIC, name, &current, &next);
        let changed = (!records.is_empty()).then(|| ReconfiguredTopic {
            name: name.to_string(),
            id: topic.id,
            config: next,
        });
        Ok((records, changed))
    }

    /// Describes the configs of topic `name` as Kafka's DescribeConfigs does (every topic
    /// config, or only `keys`; see [`topic_config::describe`]); `INVALID_TOPIC_EXCEPTION`
    /// for an illegal name, `UNKNOWN_TOPIC_OR_PARTITION` for a missing topic. Reads the
    /// image only (no lock, no I/O).
    pub fn describe_topic_configs(
        &self,
        name: &str,
        keys: Option<&[String]>,
        include_synonyms: bool,
        include_documentation: bool,
    ) -> Result<Vec<DescribedConfig>, ApiError> {
        validate_name(name)?;
        let image = self.image();
        if image.topic(name).is_none() {
            return Err(ApiError::new(
                UNKNOWN_TOPIC_OR_PARTITION,
                format!("The topic '{name}' does not exist."),
            ));
        }
        let empty = BTreeMap::new();
        let overrides = image.topic_config(name).unwrap_or(&empty);
        let mut configs = topic_config::describe(
            overrides,
            &self.broker_configs(&image),
            include_synonyms,
            include_documentation,
        );
        if let Some(keys) = keys {
            configs.retain(|c| keys.iter().any(|k| k == c.name));
        }
        Ok(configs)
    }
}

/// Java's `String.split(",")`: trailing empty strings are dropped.
fn java_split(text: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = text.split(',').collect();
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}
