//! The broker's view of the cluster: the KRaft metadata, read from Kafka's own on-disk
//! format.
//!
//! * [`meta_properties`]: `<log.dir>/meta.properties` (cluster id, node id, directory id),
//!   read, checked against the configured `node.id`, or written when formatting a fresh
//!   directory; Kafka's base64 UUID text.
//! * [`image`]: [`MetadataImage`], the immutable, cheaply cloned snapshot the handlers read
//!   (topics, partitions, brokers, features, configs, producer ids), and how each metadata
//!   record changes it.
//! * [`replay`]: [`load`] rebuilds the image at start-up from the newest snapshot and the
//!   segments of `__cluster_metadata-0`.
//! * [`metadata_log`]: [`MetadataLog`], the appender of `__cluster_metadata-0` (new epoch
//!   per start, one fsync'd batch per change, segments and indexes in Kafka's format).
//! * [`quorum`]: the metadata quorum of several controllers on openraft, keeping Kafka's
//!   files (log segments, `quorum-state`, `.checkpoint` snapshots).
//! * [`snapshot`]: the image written as a `.checkpoint` snapshot in Kafka's format;
//!   [`snapshot_retention`]: which snapshots and segments go (Kafka's `KafkaMetadataLog`
//!   retention); `controller/snapshots.rs` decides when (Kafka's `SnapshotGenerator`).
//! * [`controller`]: [`Controller`], this node as its own KRaft controller: it owns the log
//!   and the current image, and creates and deletes topics, adds partitions and alters
//!   topic configs with Kafka's checks.
//! * [`features`]: UpdateFeatures (finalized feature levels, `metadata.version` upgrades
//!   and safe downgrades) with the checks of Kafka's `FeatureControlManager`.
//! * [`client_metrics`]: client-metrics subscriptions (KIP-714) altered through
//!   IncrementalAlterConfigs, validated as Kafka's `ClientMetricsConfigs`.
//! * [`controller_link`]: in a multi-node cluster, what this node sends to the active
//!   controller over [`controller_channel`]: [`broker_lifecycle`] (registration, heartbeats,
//!   controlled shutdown), forwarded admin requests, [`alter_partition_sender`].
//! * [`publisher`]: in a multi-node cluster, each committed image applied to this broker's
//!   local state (logs made and deleted, leader/follower roles, coordinators loaded and
//!   unloaded, configs), against the one before it ([`local_changes`]).
//! * [`coordinator_partitions`]: which internal-topic partitions the coordinators serve.
//! * [`mod@reconcile`]: `partition.metadata` and [`reconcile()`], which partition directories
//!   to create or delete at start-up so that the disk matches the image.

pub mod alter_partition_sender;
pub mod broker_lifecycle;
pub mod client_metrics;
pub mod client_quotas;
pub mod controller;
pub mod controller_channel;
pub mod controller_link;
pub mod coordinator_partitions;
pub mod features;
pub mod group_configs;
pub mod image;
pub mod local_changes;
pub mod meta_properties;
pub mod metadata_log;
pub mod observer;
pub mod publisher;
#[cfg(test)]
mod publisher_broker_tests;
#[cfg(test)]
mod publisher_tests;
pub mod quorum;
pub mod reconcile;
pub mod replay;
pub mod snapshot;
pub mod snapshot_retention;
pub mod snapshot_trigger;
pub mod storage_tool;

#[cfg(test)]
mod acl_tests;
#[cfg(test)]
mod controller_tests;
#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod recovery_tests;
#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod tests;

pub use controller::{
    ApiError, Applied, Controller, ControllerError, ControllerOptions, StartupReport, TopicDelta,
};
pub use image::{
    BrokerRegistration, ConfigResource, ControllerRegistration, Endpoint, ImageError,
    LeaderRecoveryState, MetadataImage, PartitionImage, TopicImage,
};
pub use meta_properties::{
    Base64UuidError, MetaProperties, MetaPropertiesError, random_cluster_id, random_uuid,
    uuid_from_base64, uuid_to_base64,
};
pub use metadata_log::{MetadataLog, MetadataLogError, MetadataLogOptions};
pub use reconcile::{PartitionDir, PartitionMetadata, Reconciliation, reconcile};
pub use replay::{LoadedMetadata, ReplayError, SnapshotId, load};
