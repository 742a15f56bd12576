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

pub mod image;
pub mod meta_properties;
pub mod replay;

#[cfg(test)]
mod tests;

pub use image::{
    BrokerRegistration, ConfigResource, ControllerRegistration, Endpoint, ImageError,
    LeaderRecoveryState, MetadataImage, PartitionImage, TopicImage,
};
pub use meta_properties::{
    Base64UuidError, MetaProperties, MetaPropertiesError, random_cluster_id, random_uuid,
    uuid_from_base64, uuid_to_base64,
};
pub use replay::{LoadedMetadata, ReplayError, SnapshotId, load};
