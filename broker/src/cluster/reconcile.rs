//! Partition directories against the metadata: the `partition.metadata` file Kafka keeps in
//! each partition directory, and [`reconcile`], which says at start-up which directories
//! must be created or deleted so that the disk matches the metadata image.
//!
//! The controller makes topic changes durable in the metadata log **before** the broker
//! creates or deletes directories (see [`controller`](super::controller)), so after a crash
//! the image is right and the directories may lag behind it: a topic created but without
//! its directories, a topic deleted but with its directories still there, or a topic
//! deleted and created again under the same name whose old directories are still there.
//! The `partition.metadata` file tells the last case apart: it holds the id of the topic
//! the directory was created for.
//!
//! ```text
//! version: 0
//! topic_id: 6bXTVjGkQmOHHQ8MLNzzqg
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::image::MetadataImage;
use super::meta_properties::{uuid_from_base64, uuid_to_base64};

/// Name of the file in each partition directory.
pub const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// The version of `partition.metadata` Kafka writes.
pub const PARTITION_METADATA_VERSION: i32 = 0;

/// A `partition.metadata` file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PartitionMetadataError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The file is not what Kafka writes.
    #[error("{}: malformed partition metadata: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The contents of `partition.metadata` (Kafka's `PartitionMetadata`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// The file version (0).
    pub version: i32,
    /// The id of the topic the partition belongs to.
    pub topic_id: Uuid,
}

impl PartitionMetadata {
    /// Version 0 metadata for `topic_id`.
    pub fn new(topic_id: Uuid) -> PartitionMetadata {
        PartitionMetadata {
            version: PARTITION_METADATA_VERSION,
            topic_id,
        }
    }

    /// The file's text: `version: 0\ntopic_id: <base64 id>\n`.
    pub fn to_file_string(&self) -> String {
        format!(
            "version: {}\ntopic_id: {}\n",
            self.version,
            uuid_to_base64(self.topic_id)
        )
    }

    /// Parses the file's text as Kafka's `PartitionMetadataReadBuffer` does: two lines
    /// `key: value` (the separator is `:` and whitespace), a version of at least 0, a
    /// non-zero topic id.
    pub fn parse(text: &str) -> Result<PartitionMetadata, String> {
        let mut lines = text.lines();
        let mut field = |key: &str| -> Result<String, String> {
            let line = lines
                .next()
                .ok_or_else(|| format!("missing the {key} line"))?;
            let (name, value) = line
                .split_once(':')
                .filter(|(_, value)| value.starts_with(char::is_whitespace))
                .ok_or_else(|| format!("malformed line {line:?}"))?;
            if name != key {
                return Err(format!("expected {key}, found {name:?}"));
            }
            Ok(value.trim().to_string())
        };
        let version = field("version")?;
        let version: i32 = version
            .parse()
            .map_err(|_| format!("version {version:?} is not a number"))?;
        if version < PARTITION_METADATA_VERSION {
            return Err(format!("unrecognized version {version}"));
        }
        let topic_id = field("topic_id")?;
        let topic_id = uuid_from_base64(&topic_id).map_err(|e| e.to_string())?;
        if topic_id.is_nil() {
            return Err("invalid topic id (zero)".to_string());
        }
        Ok(PartitionMetadata { version, topic_id })
    }

    /// Reads `<partition_dir>/partition.metadata`; `None` if there is none.
    pub fn read(partition_dir: &Path) -> Result<Option<PartitionMetadata>, PartitionMetadataError> {
        let path = partition_dir.join(PARTITION_METADATA_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(PartitionMetadataError::Io { path, source }),
        };
        PartitionMetadata::parse(&text)
            .map(Some)
            .map_err(|reason| PartitionMetadataError::Malformed { path, reason })
    }

    /// Writes `<partition_dir>/partition.metadata` durably, as Kafka does: to a temporary
    /// file that is synced and renamed over the old one, then syncs the directory.
    pub fn write(&self, partition_dir: &Path) -> Result<(), PartitionMetadataError> {
        let path = partition_dir.join(PARTITION_METADATA_FILE);
        let tmp = partition_dir.join(format!("{PARTITION_METADATA_FILE}.tmp"));
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PartitionMetadataError::Io { path, source }
        };
        {
            let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
            file.write_all(self.to_file_string().as_bytes())
                .map_err(io_err(&tmp))?;
            file.sync_all().map_err(io_err(&tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        if let Ok(dir) = File::open(partition_dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// A partition directory found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionDir {
    /// The directory.
    pub path: PathBuf,
    /// The topic its name gives.
    pub topic: String,
    /// The partition index its name gives.
    pub partition: i32,
    /// The topic id of its `partition.metadata`, `None` if it has none (or an unreadable
    /// one).
    pub topic_id: Option<Uuid>,
}

impl PartitionDir {
    /// Describes the directory `path` of partition `partition` of `topic`, reading its
    /// `partition.metadata` (an unreadable file counts as none, with a warning).
    pub fn read(path: PathBuf, topic: impl Into<String>, partition: i32) -> PartitionDir {
        let topic_id = match PartitionMetadata::read(&path) {
            Ok(metadata) => metadata.map(|m| m.topic_id),
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        };
        PartitionDir {
            path,
            topic: topic.into(),
            partition,
            topic_id,
        }
    }
}

/// A partition of the image that has no directory.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MissingPartition {
    /// The topic name.
    pub topic: String,
    /// The topic id (to write into `partition.metadata`).
    pub topic_id: Uuid,
    /// The partition index.
    pub partition: i32,
}

/// Why a directory must go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteReason {
    /// The image has no topic with that name.
    UnknownTopic,
    /// The topic exists but its `partition.metadata` names another topic id (the topic was
    /// deleted and created again).
    TopicIdMismatch,
    /// The topic exists but does not have that partition, or this node holds no replica
    /// of it.
    NotAReplica,
}

/// What [`reconcile`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// Partitions of the image (with a replica on this node) that have no directory, by
    /// topic and partition: create each directory and its `partition.metadata`.
    pub to_create: Vec<MissingPartition>,
    /// Directories that do not belong to the image: delete them (or rename them away).
    pub to_delete: Vec<(PartitionDir, DeleteReason)>,
    /// Directories of the image's partitions without `partition.metadata`: write it with
    /// this topic id.
    pub to_stamp: Vec<(PathBuf, Uuid)>,
}

impl Reconciliation {
    /// Whether the directories already match the image.
    pub fn is_empty(&self) -> bool {
        self.to_create.is_empty() && self.to_delete.is_empty() && self.to_stamp.is_empty()
    }
}

/// Compares the partition directories on disk with the image, for node `node_id`:
/// directories of topics the image does not have, of partitions it does not have (or that
/// have no replica on this node), and whose `partition.metadata` names another topic id
/// are to be deleted; partitions of the image with a replica on this node and no
/// (remaining) directory are to be created; kept directories without `partition.metadata`
/// are to be stamped. The metadata partition (`__cluster_metadata`) is never touched.
/// Pure: reads nothing, changes nothing.
pub fn reconcile(image: &MetadataImage, node_id: i32, existing: &[PartitionDir]) -> Reconciliation {
    let mut out = Reconciliation::default();
    let mut present: BTreeSet<(&str, i32)> = BTreeSet::new();
    for dir in existing {
        if dir.topic == "__cluster_metadata" {
            continue;
        }
        let Some(topic) = image.topic(&dir.topic) else {
            out.to_delete
                .push((dir.clone(), DeleteReason::UnknownTopic));
            continue;
        };
        let hosted = topic
            .partition(dir.partition)
            .is_some_and(|p| p.replicas.contains(&node_id));
        match dir.topic_id {
            Some(id) if id != topic.id => {
                out.to_delete
                    .push((dir.clone(), DeleteReason::TopicIdMismatch));
            }
            _ if !hosted => out.to_delete.push((dir.clone(), DeleteReason::NotAReplica)),
            Some(_) => {
                present.insert((dir.topic.as_str(), dir.partition));
            }
            None => {
                out.to_stamp.push((dir.path.clone(), topic.id));
                present.insert((dir.topic.as_str(), dir.partition));
            }
        }
    }
    let mut missing = BTreeMap::new();
    for topic in image.topics() {
        for (index, partition) in &topic.partitions {
            if partition.replicas.contains(&node_id)
                && !present.contains(&(topic.name.as_str(), *index))
            {
                missing.insert(
                    (topic.name.clone(), *index),
                    MissingPartition {
                        topic: topic.name.clone(),
                        topic_id: topic.id,
                        partition: *index,
                    },
                );
            }
        }
    }
    out.to_create = missing.into_values().collect();
    out
}
