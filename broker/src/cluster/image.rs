//! [`MetadataImage`]: the broker's view of the cluster metadata, built by applying KRaft
//! metadata records in log order, as Kafka's `MetadataDelta`/`MetadataImage` do.
//!
//! # Sharing
//!
//! Handlers read the current image through an `ArcSwap<MetadataImage>` and never see it
//! change under them. The image is **copy-on-write**: each section (topics, features,
//! brokers, controllers, configs, the pending transaction) sits behind its own [`Arc`], and
//! every topic behind another. Cloning an image costs a few reference count increments;
//! applying records to a clone copies only what they touch: for topics, the id and name
//! indexes (pointers and shared names) and the touched topics; for the small sections
//! (features, brokers, configs), the section. Applying to an image nobody else holds
//! (replay at start-up) copies nothing. The alternative, rebuilding the image per batch,
//! would cost a full copy per change. To publish a change:
//!
//! ```ignore
//! let mut next = MetadataImage::clone(&current.load());
//! next.apply_with_epoch(offset, epoch, &record)?;
//! current.store(Arc::new(next));
//! ```
//!
//! # Kafka's semantics
//!
//! * `TopicRecord` creates a topic without partitions (replacing a topic with the same name
//!   or id, which the controller never writes); `PartitionRecord` adds (or replaces) a
//!   partition; `RemoveTopicRecord` removes the topic and its topic configs.
//! * `PartitionChangeRecord` is merged as `PartitionRegistration.merge` does: a null list
//!   (replicas, ISR, removing/adding replicas, directories, ELR, last known ELR) leaves the
//!   field unchanged; leader [`NO_LEADER_CHANGE`] (-2) leaves the leader and the leader epoch
//!   unchanged, any other value (including [`NO_LEADER`] and the current leader itself) sets
//!   the leader and bumps the leader epoch by one; leader recovery state -1 is "unchanged";
//!   the partition epoch is bumped by one on every record. Empty directory lists become
//!   [`DIRECTORY_MIGRATING`] for every replica, as Kafka's `defaultToMigrating` does.
//! * `ClearElrRecord` empties the ELR and last known ELR of the named topic's partitions (of
//!   every topic for an empty name), merging like a `PartitionChangeRecord` (so the partition
//!   epoch of each partition that had any is bumped).
//! * `FeatureLevelRecord` sets a finalized feature level; level 0 removes the feature
//!   (`metadata.version` cannot be removed).
//! * `RegisterBrokerRecord` replaces the broker's registration; `UnregisterBrokerRecord`
//!   removes it; `FenceBrokerRecord`, `UnfenceBrokerRecord` and
//!   `BrokerRegistrationChangeRecord` need a registration with the record's broker epoch.
//!   `RegisterControllerRecord` records a controller's registration.
//! * `ConfigRecord` sets a key of a resource; a null value deletes it.
//! * `ProducerIdsRecord` sets the next producer id.
//! * Records between `BeginTransactionRecord` and `EndTransactionRecord` are buffered and
//!   applied together at the end (all or nothing); `AbortTransactionRecord` discards them.
//! * `AccessControlEntryRecord` adds an ACL under its id, `RemoveAccessControlEntryRecord`
//!   drops it (Kafka's `AclsImage`); `UserScramCredentialRecord` and its removal keep the
//!   SCRAM credentials; `ClientQuotaRecord`s (`client_quotas.rs`) keep the client quotas.
//! * Delegation token, ZooKeeper migration state and no-op records are accepted and
//!   ignored (the broker does not use them).
//!
//! Records that refer to unknown topics, partitions or brokers, or hold invalid values, fail
//! with an [`ImageError`] naming the offset, as they make Kafka's loader fail; a failed
//! record leaves the image unchanged.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gregor_protocol::MetadataRecord;
use gregor_protocol::VersionRange;
use gregor_protocol::messages::broker_registration_change_record::BrokerRegistrationChangeRecord;
use gregor_protocol::messages::partition_change_record::PartitionChangeRecord;
use gregor_protocol::messages::partition_record::PartitionRecord;
use gregor_protocol::messages::register_broker_record::RegisterBrokerRecord;
use gregor_protocol::messages::register_controller_record::RegisterControllerRecord;
use gregor_protocol::messages::user_scram_credential_record::UserScramCredentialRecord;
use uuid::Uuid;

/// Leader id of a partition without a leader.
pub const NO_LEADER: i32 = -1;
/// Leader id in a `PartitionChangeRecord` that leaves the leader unchanged.
pub const NO_LEADER_CHANGE: i32 = -2;
/// The feature whose level is the metadata version.
pub const METADATA_VERSION_FEATURE: &str = "metadata.version";

/// Directory id of a replica whose directory is unknown because it was created before
/// directory assignment (Kafka's `DirectoryId.MIGRATING`, the all-zero id: what a record
/// written before KIP-858 reads as).
pub const DIRECTORY_MIGRATING: Uuid = Uuid::from_u64_pair(0, 0);
/// Directory id of a replica not assigned to a directory yet (`DirectoryId.UNASSIGNED`).
pub const DIRECTORY_UNASSIGNED: Uuid = Uuid::from_u64_pair(0, 1);
/// Directory id of a replica on a directory that went offline (`DirectoryId.LOST`).
pub const DIRECTORY_LOST: Uuid = Uuid::from_u64_pair(0, 2);

/// Whether a partition's leader came from an unclean election and is still recovering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LeaderRecoveryState {
    /// The leader was elected from the ISR or has recovered (0).
    #[default]
    Recovered,
    /// The leader came from an unclean election and is recovering (1).
    Recovering,
}

impl LeaderRecoveryState {
    /// The state for a record value (0 or 1).
    pub fn from_i8(value: i8) -> Option<LeaderRecoveryState> {
        match value {
            0 => Some(LeaderRecoveryState::Recovered),
            1 => Some(LeaderRecoveryState::Recovering),
            _ => None,
        }
    }

    /// The record value.
    pub fn as_i8(self) -> i8 {
        match self {
            LeaderRecoveryState::Recovered => 0,
            LeaderRecoveryState::Recovering => 1,
        }
    }
}

/// One partition of a topic (Kafka's `PartitionRegistration`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionImage {
    /// Brokers holding replicas, in order of preference.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas an ongoing reassignment removes.
    pub removing_replicas: Vec<i32>,
    /// Replicas an ongoing reassignment adds.
    pub adding_replicas: Vec<i32>,
    /// The leader, or [`NO_LEADER`].
    pub leader: i32,
    /// Whether the leader is recovering from an unclean election.
    pub leader_recovery_state: LeaderRecoveryState,
    /// Epoch of the current leader; bumped on each leader change.
    pub leader_epoch: i32,
    /// Bumped on every change to the partition.
    pub partition_epoch: i32,
    /// Log directory id of each replica, in the order of `replicas`.
    pub directories: Vec<Uuid>,
    /// Eligible leader replicas (empty when none or not in use).
    pub eligible_leader_replicas: Vec<i32>,
    /// Last known eligible leader replicas (empty when none or not in use).
    pub last_known_elr: Vec<i32>,
}

impl PartitionImage {
    /// The partition a `PartitionRecord` describes (`None` for an invalid leader recovery
    /// state).
    pub fn from_record(record: &PartitionRecord) -> Option<PartitionImage> {
        Some(PartitionImage {
            replicas: record.replicas.clone(),
            isr: record.isr.clone(),
            removing_replicas: record.removing_replicas.clone(),
            adding_replicas: record.adding_replicas.clone(),
            leader: record.leader,
            leader_recovery_state: LeaderRecoveryState::from_i8(record.leader_recovery_state)?,
            leader_epoch: record.leader_epoch,
            partition_epoch: record.partition_epoch,
            directories: default_to_migrating(record.directories.clone(), record.replicas.len()),
            eligible_leader_replicas: record.eligible_leader_replicas.clone().unwrap_or_default(),
            last_known_elr: record.last_known_elr.clone().unwrap_or_default(),
        })
    }

    /// Whether the partition has a leader.
    pub fn has_leader(&self) -> bool {
        self.leader >= 0
    }

    /// Whether a reassignment is in progress.
    pub fn is_reassigning(&self) -> bool {
        !self.removing_replicas.is_empty() || !self.adding_replicas.is_empty()
    }

    /// The partition after a `PartitionChangeRecord` (Kafka's `PartitionRegistration.merge`;
    /// see the module docs). Fails with the name and value of an invalid field.
    pub fn merge(
        &self,
        change: &PartitionChangeRecord,
    ) -> Result<PartitionImage, (&'static str, i64)> {
        if let (Some(replicas), Some(directories)) = (&change.replicas, &change.directories)
            && replicas.len() != directories.len()
        {
            return Err(("directories count", directories.len() as i64));
        }
        let leader_recovery_state = match change.leader_recovery_state {
            -1 => self.leader_recovery_state,
            value => LeaderRecoveryState::from_i8(value)
                .ok_or(("leader recovery state", i64::from(value)))?,
        };
        let (leader, leader_epoch) = match change.leader {
            NO_LEADER_CHANGE => (self.leader, self.leader_epoch),
            leader if leader < NO_LEADER => return Err(("leader", i64::from(leader))),
            leader => (leader, self.leader_epoch.wrapping_add(1)),
        };
        let replicas = change
            .replicas
            .clone()
            .unwrap_or_else(|| self.replicas.clone());
        let directories = match &change.directories {
            Some(directories) => directories.clone(),
            None => self.directories.clone(),
        };
        Ok(PartitionImage {
            directories: default_to_migrating(directories, replicas.len()),
            replicas,
            isr: changed(&change.isr, &self.isr),
            removing_replicas: changed(&change.removing_replicas, &self.removing_replicas),
            adding_replicas: changed(&change.adding_replicas, &self.adding_replicas),
            leader,
            leader_recovery_state,
            leader_epoch,
            partition_epoch: self.partition_epoch.wrapping_add(1),
            eligible_leader_replicas: changed(
                &change.eligible_leader_replicas,
                &self.eligible_leader_replicas,
            ),
            last_known_elr: changed(&change.last_known_elr, &self.last_known_elr),
        })
    }
}

fn changed<T: Clone>(new: &Option<Vec<T>>, old: &[T]) -> Vec<T> {
    new.as_deref().unwrap_or(old).to_vec()
}

/// Kafka's `defaultToMigrating`: no directories means "migrating" for every replica.
fn default_to_migrating(directories: Vec<Uuid>, replicas: usize) -> Vec<Uuid> {
    if directories.is_empty() {
        vec![DIRECTORY_MIGRATING; replicas]
    } else {
        directories
    }
}

/// A topic and its partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicImage {
    /// The topic name.
    pub name: String,
    /// The topic id.
    pub id: Uuid,
    /// The partitions by index.
    pub partitions: BTreeMap<i32, PartitionImage>,
}

impl TopicImage {
    /// Partition `index`, if the topic has it.
    pub fn partition(&self, index: i32) -> Option<&PartitionImage> {
        self.partitions.get(&index)
    }
}

/// A listener a broker or controller registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The listener name (`PLAINTEXT`, `CONTROLLER`, ...).
    pub listener: String,
    /// The advertised host.
    pub host: String,
    /// The advertised port.
    pub port: u16,
    /// The security protocol id (0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL).
    pub security_protocol: i16,
}

/// A broker's registration (Kafka's `BrokerRegistration`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRegistration {
    /// The broker id.
    pub id: i32,
    /// The epoch the controller gave this registration.
    pub epoch: i64,
    /// The id of the broker process incarnation that registered.
    pub incarnation_id: Uuid,
    /// The advertised listeners, in record order.
    pub endpoints: Vec<Endpoint>,
    /// The features the broker supports, by name.
    pub supported_features: BTreeMap<String, VersionRange>,
    /// The rack, if any.
    pub rack: Option<String>,
    /// Whether the broker is fenced (may not lead or be in ISRs).
    pub fenced: bool,
    /// Whether the broker is shutting down in a controlled way.
    pub in_controlled_shutdown: bool,
    /// Whether the broker is a ZooKeeper broker being migrated.
    pub is_migrating_zk_broker: bool,
    /// The broker's usable log directory ids.
    pub directories: Vec<Uuid>,
    /// The broker's cordoned log directory ids.
    pub cordoned_directories: Vec<Uuid>,
}

impl BrokerRegistration {
    fn from_record(record: &RegisterBrokerRecord) -> BrokerRegistration {
        BrokerRegistration {
            id: record.broker_id,
            epoch: record.broker_epoch,
            incarnation_id: record.incarnation_id,
            endpoints: record
                .end_points
                .iter()
                .map(|e| Endpoint {
                    listener: e.name.to_string(),
                    host: e.host.to_string(),
                    port: e.port,
                    security_protocol: e.security_protocol,
                })
                .collect(),
            supported_features: record
                .features
                .iter()
                .map(|f| {
                    let range = VersionRange {
                        min: f.min_supported_version,
                        max: f.max_supported_version,
                    };
                    (f.name.to_string(), range)
                })
                .collect(),
            rack: record.rack.as_ref().map(|r| r.to_string()),
            fenced: record.fenced,
            in_controlled_shutdown: record.in_controlled_shutdown,
            is_migrating_zk_broker: record.is_migrating_zk_broker,
            directories: record.log_dirs.clone(),
            cordoned_directories: record.cordoned_log_dirs.clone().unwrap_or_default(),
        }
    }

    /// The endpoint of `listener`, if the broker registered one.
    pub fn endpoint(&self, listener: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.listener == listener)
    }
}

/// A controller's registration (`RegisterControllerRecord`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerRegistration {
    /// The controller (node) id.
    pub id: i32,
    /// The id of the controller process incarnation that registered.
    pub incarnation_id: Uuid,
    /// Whether the controller is ready for a ZooKeeper migration.
    pub zk_migration_ready: bool,
    /// The controller's listeners.
    pub endpoints: Vec<Endpoint>,
    /// The features the controller supports, by name.
    pub supported_features: BTreeMap<String, VersionRange>,
}

impl ControllerRegistration {
    fn from_record(record: &RegisterControllerRecord) -> ControllerRegistration {
        ControllerRegistration {
            id: record.controller_id,
            incarnation_id: record.incarnation_id,
            zk_migration_ready: record.zk_migration_ready,
            endpoints: record
                .end_points
                .iter()
                .map(|e| Endpoint {
                    listener: e.name.to_string(),
                    host: e.host.to_string(),
                    port: e.port,
                    security_protocol: e.security_protocol,
                })
                .collect(),
            supported_features: record
                .features
                .iter()
                .map(|f| {
                    let range = VersionRange {
                        min: f.min_supported_version,
                        max: f.max_supported_version,
                    };
                    (f.name.to_string(), range)
                })
                .collect(),
        }
    }
}

/// A resource that has configs (Kafka's `ConfigResource`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigResource {
    /// The resource type id (see the associated constants).
    pub resource_type: i8,
    /// The resource name: a topic name, a broker id, or "" for the cluster-wide broker
    /// defaults.
    pub name: String,
}

impl ConfigResource {
    /// Resource type of topics.
    pub const TOPIC: i8 = 2;
    /// Resource type of brokers (the name is the broker id, "" for cluster defaults).
    pub const BROKER: i8 = 4;
    /// Resource type of broker loggers.
    pub const BROKER_LOGGER: i8 = 8;
    /// Resource type of client metrics subscriptions.
    pub const CLIENT_METRICS: i8 = 16;
    /// Resource type of consumer groups.
    pub const GROUP: i8 = 32;

    /// A resource of `resource_type` named `name`.
    pub fn new(resource_type: i8, name: impl Into<String>) -> ConfigResource {
        ConfigResource {
            resource_type,
            name: name.into(),
        }
    }
}

/// A record that cannot be applied to the image.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The record names a topic id the image does not have.
    #[error("offset {offset}: unable to apply {record}: no topic with id {topic_id}")]
    UnknownTopicId {
        /// Offset of the record.
        offset: i64,
        /// The record type.
        record: &'static str,
        /// The topic id.
        topic_id: Uuid,
    },
    /// The record names a topic the image does not have.
    #[error("offset {offset}: unable to apply {record}: no topic named {name:?}")]
    UnknownTopicName {
        /// Offset of the record.
        offset: i64,
        /// The record type.
        record: &'static str,
        /// The topic name.
        name: String,
    },
    /// A `PartitionChangeRecord` for a partition the topic does not have.
    #[error(
        "offset {offset}: unable to apply {record}: topic {topic_id} has no partition {partition}"
    )]
    UnknownPartition {
        /// Offset of the record.
        offset: i64,
        /// The record type.
        record: &'static str,
        /// The topic id.
        topic_id: Uuid,
        /// The partition index.
        partition: i32,
    },
    /// The record names a broker that is not registered.
    #[error(
        "offset {offset}: unable to apply {record}: no broker registration found for {broker_id}"
    )]
    UnknownBroker {
        /// Offset of the record.
        offset: i64,
        /// The record type.
        record: &'static str,
        /// The broker id.
        broker_id: i32,
    },
    /// The record names a broker registration with another epoch.
    #[error(
        "offset {offset}: unable to apply {record}: broker {broker_id} is registered with epoch \
         {registered}, not {epoch}"
    )]
    BrokerEpochMismatch {
        /// Offset of the record.
        offset: i64,
        /// The record type.
        record: &'static str,
        /// The broker id.
        broker_id: i32,
        /// The epoch in the record.
        epoch: i64,
        /// The epoch of the registration.
        registered: i64,
    },
    /// A field holds a value the record type does not allow.
    #[error("offset {offset}: {record} has an invalid {field}: {value}")]
    InvalidValue {
        /// Offset of the record.
        offset: i64,
        /// The record type.
        record: &'static str,
        /// The field.
        field: &'static str,
        /// The value.
        value: i64,
    },
    /// Transaction markers out of order (a begin inside a transaction, an end or abort
    /// outside one).
    #[error("offset {offset}: {reason}")]
    Transaction {
        /// Offset of the record.
        offset: i64,
        /// What is wrong.
        reason: &'static str,
    },
}

impl ImageError {
    /// Offset of the record that could not be applied.
    pub fn offset(&self) -> i64 {
        match self {
            ImageError::UnknownTopicId { offset, .. }
            | ImageError::UnknownTopicName { offset, .. }
            | ImageError::UnknownPartition { offset, .. }
            | ImageError::UnknownBroker { offset, .. }
            | ImageError::BrokerEpochMismatch { offset, .. }
            | ImageError::InvalidValue { offset, .. }
            | ImageError::Transaction { offset, .. } => *offset,
        }
    }
}

/// The topics, indexed by id (owning) and by name.
#[derive(Clone, Debug, Default)]
struct TopicsImage {
    by_id: HashMap<Uuid, Arc<TopicImage>>,
    by_name: BTreeMap<Arc<str>, Uuid>,
}

/// Records of a transaction that has begun but not ended.
#[derive(Clone, Debug)]
struct PendingTransaction {
    begin_offset: i64,
    records: Vec<(i64, MetadataRecord)>,
}

/// An immutable snapshot of the cluster metadata (see the module docs for how it is shared
/// and which Kafka semantics it follows).
#[derive(Clone, Debug)]
pub struct MetadataImage {
    offset: i64,
    epoch: i32,
    topics: Arc<TopicsImage>,
    features: Arc<BTreeMap<String, i16>>,
    brokers: Arc<BTreeMap<i32, BrokerRegistration>>,
    controllers: Arc<BTreeMap<i32, ControllerRegistration>>,
    configs: Arc<BTreeMap<ConfigResource, BTreeMap<String, String>>>,
    next_producer_id: Option<i64>,
    pending: Option<Arc<PendingTransaction>>,
    /// SCRAM credentials by (user, mechanism type), Kafka's `ScramImage`.
    scram: Arc<BTreeMap<(String, i8), UserScramCredentialRecord>>,
    /// ACLs by the id of their `AccessControlEntryRecord`, Kafka's `AclsImage`.
    acls: Arc<BTreeMap<Uuid, crate::authorizer::StandardAcl>>,
    /// Client quotas by entity, Kafka's `ClientQuotasImage`.
    client_quotas: Arc<super::client_quotas::ClientQuotasImage>,
}

impl Default for MetadataImage {
    fn default() -> Self {
        MetadataImage::empty()
    }
}

impl MetadataImage {
    /// The image of an empty metadata log: nothing applied (offset and epoch -1).
    pub fn empty() -> MetadataImage {
        MetadataImage {
            offset: -1,
            epoch: -1,
            topics: Arc::default(),
            features: Arc::default(),
            brokers: Arc::default(),
            controllers: Arc::default(),
            configs: Arc::default(),
            next_producer_id: None,
            pending: None,
            scram: Arc::default(),
            acls: Arc::default(),
            client_quotas: Arc::default(),
        }
    }

    /// Offset of the last record whose effect the image shows (-1 for none): records of a
    /// transaction count once it ends (at the `EndTransactionRecord`'s offset). This is also
    /// what Kafka reports as the finalized features epoch.
    pub fn last_offset(&self) -> i64 {
        self.offset
    }

    /// Epoch (partition leader epoch of the metadata log) of the last applied record, -1
    /// for none.
    pub fn last_epoch(&self) -> i32 {
        self.epoch
    }

    /// Sets the offset and epoch the image is at, e.g. to a snapshot's last contained
    /// offset and epoch after applying its records.
    pub fn set_provenance(&mut self, offset: i64, epoch: i32) {
        self.offset = offset;
        self.epoch = epoch;
    }

    /// Whether the image holds no topics, brokers, features or configs.
    pub fn is_empty(&self) -> bool {
        self.topics.by_id.is_empty()
            && self.features.is_empty()
            && self.brokers.is_empty()
            && self.controllers.is_empty()
            && self.configs.is_empty()
            && self.next_producer_id.is_none()
            && self.scram.is_empty()
            && self.acls.is_empty()
            && self.client_quotas.is_empty()
    }

    /// The ACLs (`AccessControlEntryRecord`s), by id; shared, so an authorizer can hold
    /// them without copying.
    pub fn acls(&self) -> &Arc<BTreeMap<Uuid, crate::authorizer::StandardAcl>> {
        &self.acls
    }

    /// The client quotas (`ClientQuotaRecord`s), by entity.
    pub fn client_quotas(&self) -> &super::client_quotas::ClientQuotasImage {
        &self.client_quotas
    }

    /// The SCRAM credentials (`UserScramCredentialRecord`s), by user and mechanism type.
    pub fn scram_credentials(&self) -> &BTreeMap<(String, i8), UserScramCredentialRecord> {
        &self.scram
    }

    /// The topic named `name`.
    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        let id = self.topics.by_name.get(name)?;
        self.topic_by_id(id)
    }

    /// The topic with id `id`.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicImage> {
        self.topics.by_id.get(id).map(|topic| &**topic)
    }

    /// A shared handle on the topic named `name` (to keep it past the image).
    pub fn topic_arc(&self, name: &str) -> Option<Arc<TopicImage>> {
        let id = self.topics.by_name.get(name)?;
        self.topics.by_id.get(id).cloned()
    }

    /// Every topic, sorted by name.
    pub fn topics(&self) -> impl Iterator<Item = &TopicImage> + '_ {
        self.topics
            .by_name
            .values()
            .filter_map(|id| self.topics.by_id.get(id).map(|topic| &**topic))
    }

    /// Number of topics.
    pub fn topic_count(&self) -> usize {
        self.topics.by_id.len()
    }

    /// Partition `partition` of the topic with id `topic_id`.
    pub fn partition(&self, topic_id: &Uuid, partition: i32) -> Option<&PartitionImage> {
        self.topic_by_id(topic_id)?.partitions.get(&partition)
    }

    /// The finalized features and their levels, sorted by name, `metadata.version`
    /// included.
    pub fn features(&self) -> impl Iterator<Item = (&str, i16)> + '_ {
        self.features
            .iter()
            .map(|(name, level)| (name.as_str(), *level))
    }

    /// The finalized level of `feature`.
    pub fn feature_level(&self, feature: &str) -> Option<i16> {
        self.features.get(feature).copied()
    }

    /// The `metadata.version` feature level, once set.
    pub fn metadata_version(&self) -> Option<i16> {
        self.feature_level(METADATA_VERSION_FEATURE)
    }

    /// The registered brokers, by id.
    pub fn brokers(&self) -> &BTreeMap<i32, BrokerRegistration> {
        &self.brokers
    }

    /// The registration of broker `id`.
    pub fn broker(&self, id: i32) -> Option<&BrokerRegistration> {
        self.brokers.get(&id)
    }

    /// Whether broker `id` is registered and not fenced: what Kafka counts as alive (a
    /// replica on any other broker is offline).
    pub fn is_broker_alive(&self, id: i32) -> bool {
        self.brokers.get(&id).is_some_and(|broker| !broker.fenced)
    }

    /// The registered controllers, by id.
    pub fn controllers(&self) -> &BTreeMap<i32, ControllerRegistration> {
        &self.controllers
    }

    /// Every resource with configs, and its configs.
    pub fn configs(&self) -> &BTreeMap<ConfigResource, BTreeMap<String, String>> {
        &self.configs
    }

    /// The configs set on a resource (`None` if none are).
    pub fn config(&self, resource_type: i8, name: &str) -> Option<&BTreeMap<String, String>> {
        self.configs.get(&ConfigResource::new(resource_type, name))
    }

    /// The configs set on topic `name` (its overrides of the broker defaults).
    pub fn topic_config(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.config(ConfigResource::TOPIC, name)
    }

    /// The configs set on broker `id` dynamically.
    pub fn broker_config(&self, id: i32) -> Option<&BTreeMap<String, String>> {
        self.config(ConfigResource::BROKER, &id.to_string())
    }

    /// The cluster-wide dynamic broker defaults (broker resource "").
    pub fn cluster_broker_config(&self) -> Option<&BTreeMap<String, String>> {
        self.config(ConfigResource::BROKER, "")
    }

    /// The next producer id to hand out, once a `ProducerIdsRecord` set it.
    pub fn next_producer_id(&self) -> Option<i64> {
        self.next_producer_id
    }

    /// Offset of the `BeginTransactionRecord` of a transaction that has not ended yet.
    pub fn pending_transaction(&self) -> Option<i64> {
        self.pending.as_ref().map(|p| p.begin_offset)
    }

    /// Discards an unfinished transaction (at the end of the log); returns the offset of its
    /// `BeginTransactionRecord` and how many records it held.
    pub fn discard_pending_transaction(&mut self) -> Option<(i64, usize)> {
        self.pending
            .take()
            .map(|p| (p.begin_offset, p.records.len()))
    }

    /// Applies the record at `offset`, keeping the current epoch (see
    /// [`MetadataImage::apply_with_epoch`]).
    pub fn apply(&mut self, offset: i64, record: &MetadataRecord) -> Result<(), ImageError> {
        let epoch = self.epoch;
        self.apply_with_epoch(offset, epoch, record)
    }

    /// Applies the record at `offset` of a batch written in `epoch`. Inside a transaction
    /// the record is buffered until the transaction ends. On error the image is unchanged.
    pub fn apply_with_epoch(
        &mut self,
        offset: i64,
        epoch: i32,
        record: &MetadataRecord,
    ) -> Result<(), ImageError> {
        match record {
            MetadataRecord::BeginTransaction(_) => {
                if self.pending.is_some() {
                    return Err(ImageError::Transaction {
                        offset,
                        reason: "BeginTransactionRecord inside a transaction",
                    });
                }
                self.pending = Some(Arc::new(PendingTransaction {
                    begin_offset: offset,
                    records: Vec::new(),
                }));
            }
            MetadataRecord::EndTransaction(_) => {
                let Some(pending) = self.pending.as_ref() else {
                    return Err(ImageError::Transaction {
                        offset,
                        reason: "EndTransactionRecord without a BeginTransactionRecord",
                    });
                };
                // All or nothing: apply to a copy and keep it only if every record applies.
                let mut next = self.clone();
                next.pending = None;
                for (at, buffered) in &pending.records {
                    next.apply_data(*at, buffered)?;
                }
                next.offset = offset;
                next.epoch = epoch;
                *self = next;
            }
            MetadataRecord::AbortTransaction(_) => {
                if self.pending.take().is_none() {
                    return Err(ImageError::Transaction {
                        offset,
                        reason: "AbortTransactionRecord without a BeginTransactionRecord",
                    });
                }
                self.offset = offset;
                self.epoch = epoch;
            }
            _ => {
                if let Some(pending) = &mut self.pending {
                    Arc::make_mut(pending)
                        .records
                        .push((offset, record.clone()));
                } else {
                    self.apply_data(offset, record)?;
                    self.offset = offset;
                    self.epoch = epoch;
                }
            }
        }
        Ok(())
    }

    /// Applies a record that is not a transaction marker. Checks come before changes, so a
    /// failure leaves the image unchanged.
    fn apply_data(&mut self, offset: i64, record: &MetadataRecord) -> Result<(), ImageError> {
        match record {
            MetadataRecord::Topic(r) => {
                self.put_topic(r.name.to_string(), r.topic_id);
            }
            MetadataRecord::Partition(r) => {
                let partition = PartitionImage::from_record(r).ok_or(ImageError::InvalidValue {
                    offset,
                    record: "PartitionRecord",
                    field: "leader recovery state",
                    value: i64::from(r.leader_recovery_state),
                })?;
                let topic = self.topic_mut(offset, "PartitionRecord", r.topic_id)?;
                topic.partitions.insert(r.partition_id, partition);
            }
            MetadataRecord::PartitionChange(r) => self.change_partition(offset, r)?,
            MetadataRecord::RemoveTopic(r) => {
                let Some(topic) = self.topic_by_id(&r.topic_id) else {
                    return Err(ImageError::UnknownTopicId {
                        offset,
                        record: "RemoveTopicRecord",
                        topic_id: r.topic_id,
                    });
                };
                let name = topic.name.clone();
                let topics = Arc::make_mut(&mut self.topics);
                topics.by_id.remove(&r.topic_id);
                topics.by_name.remove(name.as_str());
                let resource = ConfigResource::new(ConfigResource::TOPIC, name);
                if self.configs.contains_key(&resource) {
                    Arc::make_mut(&mut self.configs).remove(&resource);
                }
            }
            MetadataRecord::ClearElr(r) => self.clear_elr(offset, &r.topic_name)?,
            MetadataRecord::FeatureLevel(r) => {
                let name = r.name.to_string();
                if r.feature_level < 0 || (r.feature_level == 0 && name == METADATA_VERSION_FEATURE)
                {
                    return Err(ImageError::InvalidValue {
                        offset,
                        record: "FeatureLevelRecord",
                        field: "feature level",
                        value: i64::from(r.feature_level),
                    });
                }
                let features = Arc::make_mut(&mut self.features);
                if r.feature_level == 0 {
                    features.remove(&name);
                } else {
                    features.insert(name, r.feature_level);
                }
            }
            MetadataRecord::RegisterBroker(r) => {
                Arc::make_mut(&mut self.brokers)
                    .insert(r.broker_id, BrokerRegistration::from_record(r));
            }
            MetadataRecord::UnregisterBroker(r) => {
                if self.brokers.contains_key(&r.broker_id) {
                    Arc::make_mut(&mut self.brokers).remove(&r.broker_id);
                }
            }
            MetadataRecord::FenceBroker(r) => {
                let broker = self.broker_mut(offset, "FenceBrokerRecord", r.id, r.epoch)?;
                broker.fenced = true;
            }
            MetadataRecord::UnfenceBroker(r) => {
                let broker = self.broker_mut(offset, "UnfenceBrokerRecord", r.id, r.epoch)?;
                broker.fenced = false;
            }
            MetadataRecord::BrokerRegistrationChange(r) => self.change_broker(offset, r)?,
            MetadataRecord::RegisterController(r) => {
                Arc::make_mut(&mut self.controllers)
                    .insert(r.controller_id, ControllerRegistration::from_record(r));
            }
            MetadataRecord::Config(r) => {
                let resource = ConfigResource::new(r.resource_type, r.resource_name.to_string());
                match &r.value {
                    Some(value) => {
                        Arc::make_mut(&mut self.configs)
                            .entry(resource)
                            .or_default()
                            .insert(r.name.to_string(), value.to_string());
                    }
                    None => {
                        let present = self
                            .configs
                            .get(&resource)
                            .is_some_and(|c| c.contains_key(&*r.name));
                        if present {
                            let configs = Arc::make_mut(&mut self.configs);
                            if let Some(keys) = configs.get_mut(&resource) {
                                keys.remove(&*r.name);
                                if keys.is_empty() {
                                    configs.remove(&resource);
                                }
                            }
                        }
                    }
                }
            }
            MetadataRecord::ProducerIds(r) => {
                self.next_producer_id = Some(r.next_producer_id);
            }
            // Security, quotas and migration state: decoded but not used by this broker.
            MetadataRecord::UserScramCredential(r) => {
                Arc::make_mut(&mut self.scram).insert((r.name.to_string(), r.mechanism), r.clone());
            }
            MetadataRecord::RemoveUserScramCredential(r) => {
                // Kafka's ScramControlManager.replay fails on an unknown credential; an
                // image only drops it (the controller never writes such a removal).
                Arc::make_mut(&mut self.scram).remove(&(r.name.to_string(), r.mechanism));
            }
            MetadataRecord::AccessControlEntry(r) => {
                // Kafka's AclControlManager.replay fails on a record it cannot read; the
                // image skips it (and says so) rather than refuse to start.
                match crate::authorizer::StandardAcl::from_record(r) {
                    Ok(acl) => {
                        Arc::make_mut(&mut self.acls).insert(r.id, acl);
                    }
                    Err(reason) => {
                        tracing::warn!("skipping AccessControlEntryRecord {}: {reason}", r.id)
                    }
                }
            }
            MetadataRecord::RemoveAccessControlEntry(r) => {
                if self.acls.contains_key(&r.id) {
                    Arc::make_mut(&mut self.acls).remove(&r.id);
                }
            }
            MetadataRecord::ClientQuota(r) => {
                Arc::make_mut(&mut self.client_quotas).apply(r);
            }
            MetadataRecord::DelegationToken(_)
            | MetadataRecord::RemoveDelegationToken(_)
            | MetadataRecord::ZkMigrationState(_)
            | MetadataRecord::NoOp(_) => {}
            MetadataRecord::BeginTransaction(_)
            | MetadataRecord::EndTransaction(_)
            | MetadataRecord::AbortTransaction(_) => {
                return Err(ImageError::Transaction {
                    offset,
                    reason: "transaction marker inside a transaction's records",
                });
            }
        }
        Ok(())
    }

    /// Adds a topic without partitions, replacing any topic with the same name or id (the
    /// controller never writes either, but the two indexes must stay consistent).
    fn put_topic(&mut self, name: String, id: Uuid) {
        let topics = Arc::make_mut(&mut self.topics);
        if let Some(old) = topics.by_id.remove(&id) {
            tracing::warn!(topic = %name, %id, "TopicRecord for an existing topic id: replacing {}", old.name);
            topics.by_name.remove(old.name.as_str());
        }
        if let Some(old_id) = topics.by_name.remove(name.as_str()) {
            tracing::warn!(topic = %name, %id, "TopicRecord for an existing topic name: replacing id {old_id}");
            topics.by_id.remove(&old_id);
        }
        topics.by_name.insert(Arc::from(name.as_str()), id);
        topics.by_id.insert(
            id,
            Arc::new(TopicImage {
                name,
                id,
                partitions: BTreeMap::new(),
            }),
        );
    }

    fn topic_mut(
        &mut self,
        offset: i64,
        record: &'static str,
        topic_id: Uuid,
    ) -> Result<&mut TopicImage, ImageError> {
        if !self.topics.by_id.contains_key(&topic_id) {
            return Err(ImageError::UnknownTopicId {
                offset,
                record,
                topic_id,
            });
        }
        let topics = Arc::make_mut(&mut self.topics);
        match topics.by_id.get_mut(&topic_id) {
            Some(topic) => Ok(Arc::make_mut(topic)),
            None => Err(ImageError::UnknownTopicId {
                offset,
                record,
                topic_id,
            }),
        }
    }

    fn change_partition(
        &mut self,
        offset: i64,
        change: &PartitionChangeRecord,
    ) -> Result<(), ImageError> {
        const RECORD: &str = "PartitionChangeRecord";
        let Some(topic) = self.topic_by_id(&change.topic_id) else {
            return Err(ImageError::UnknownTopicId {
                offset,
                record: RECORD,
                topic_id: change.topic_id,
            });
        };
        let Some(current) = topic.partitions.get(&change.partition_id) else {
            return Err(ImageError::UnknownPartition {
                offset,
                record: RECORD,
                topic_id: change.topic_id,
                partition: change.partition_id,
            });
        };
        let next = current
            .merge(change)
            .map_err(|(field, value)| ImageError::InvalidValue {
                offset,
                record: RECORD,
                field,
                value,
            })?;
        let topic = self.topic_mut(offset, RECORD, change.topic_id)?;
        topic.partitions.insert(change.partition_id, next);
        Ok(())
    }

    /// `ClearElrRecord`: empties the ELR and last known ELR of one topic ("" = every topic).
    fn clear_elr(&mut self, offset: i64, topic_name: &str) -> Result<(), ImageError> {
        let ids: Vec<Uuid> = if topic_name.is_empty() {
            self.topics.by_id.keys().copied().collect()
        } else {
            match self.topics.by_name.get(topic_name) {
                Some(id) => vec![*id],
                None => {
                    return Err(ImageError::UnknownTopicName {
                        offset,
                        record: "ClearElrRecord",
                        name: topic_name.to_string(),
                    });
                }
            }
        };
        let clear = PartitionChangeRecord {
            eligible_leader_replicas: Some(Vec::new()),
            last_known_elr: Some(Vec::new()),
            ..PartitionChangeRecord::default()
        };
        for id in ids {
            let has_elr = self.topic_by_id(&id).is_some_and(|t| {
                t.partitions
                    .values()
                    .any(|p| !p.eligible_leader_replicas.is_empty() || !p.last_known_elr.is_empty())
            });
            if !has_elr {
                continue;
            }
            let topic = self.topic_mut(offset, "ClearElrRecord", id)?;
            for partition in topic.partitions.values_mut() {
                if !partition.eligible_leader_replicas.is_empty()
                    || !partition.last_known_elr.is_empty()
                {
                    // Cannot fail: the change only sets the two lists.
                    if let Ok(next) = partition.merge(&clear) {
                        *partition = next;
                    }
                }
            }
        }
        Ok(())
    }

    fn broker_mut(
        &mut self,
        offset: i64,
        record: &'static str,
        broker_id: i32,
        epoch: i64,
    ) -> Result<&mut BrokerRegistration, ImageError> {
        match self.brokers.get(&broker_id) {
            None => {
                return Err(ImageError::UnknownBroker {
                    offset,
                    record,
                    broker_id,
                });
            }
            Some(broker) if broker.epoch != epoch => {
                return Err(ImageError::BrokerEpochMismatch {
                    offset,
                    record,
                    broker_id,
                    epoch,
                    registered: broker.epoch,
                });
            }
            Some(_) => {}
        }
        Arc::make_mut(&mut self.brokers)
            .get_mut(&broker_id)
            .ok_or(ImageError::UnknownBroker {
                offset,
                record,
                broker_id,
            })
    }

    /// `BrokerRegistrationChangeRecord`: fenced -1 unfences, 1 fences, 0 leaves it;
    /// in-controlled-shutdown 1 sets it, 0 leaves it; a non-empty directory list replaces
    /// the broker's; non-null cordoned directories replace the broker's.
    fn change_broker(
        &mut self,
        offset: i64,
        change: &BrokerRegistrationChangeRecord,
    ) -> Result<(), ImageError> {
        const RECORD: &str = "BrokerRegistrationChangeRecord";
        let invalid = |field, value: i8| ImageError::InvalidValue {
            offset,
            record: RECORD,
            field,
            value: i64::from(value),
        };
        let fenced = match change.fenced {
            -1 => Some(false),
            0 => None,
            1 => Some(true),
            other => return Err(invalid("fenced", other)),
        };
        let in_controlled_shutdown = match change.in_controlled_shutdown {
            0 => None,
            1 => Some(true),
            other => return Err(invalid("in controlled shutdown", other)),
        };
        let broker = self.broker_mut(offset, RECORD, change.broker_id, change.broker_epoch)?;
        if let Some(fenced) = fenced {
            broker.fenced = fenced;
        }
        if let Some(shutting_down) = in_controlled_shutdown {
            broker.in_controlled_shutdown = shutting_down;
        }
        if !change.log_dirs.is_empty() {
            broker.directories = change.log_dirs.clone();
        }
        if let Some(cordoned) = &change.cordoned_log_dirs {
            broker.cordoned_directories = cordoned.clone();
        }
        Ok(())
    }
}
