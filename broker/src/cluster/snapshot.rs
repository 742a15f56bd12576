//! Writing KRaft metadata snapshots in Kafka's format:
//! `__cluster_metadata-0/<20-digit end offset>-<10-digit epoch>.checkpoint`.
//!
//! # Content
//!
//! As Kafka's `RecordsSnapshotWriter` writes it (read back by
//! [`replay::load`](super::replay::load)):
//!
//! 1. a control batch at offset 0 with a `SnapshotHeaderRecord` (control type 3, the time
//!    of the last record the snapshot contains), and, when `kraft.version` is 1 or more, a
//!    `KRaftVersionRecord` (type 5) and the `VotersRecord` (type 6);
//! 2. data batches of framed metadata records, [`image_records`]: the image in the order of
//!    Kafka's `MetadataImage.write` (features with `metadata.version` first, brokers and
//!    controllers, topics with their partitions, configs (client-metrics subscriptions
//!    included), client quotas, producer ids, ACLs, SCRAM credentials). The image keeps no
//!    delegation tokens (it accepts and ignores their records), so there are none to
//!    write. Record versions follow the `metadata.version` as Kafka's `ImageWriterOptions`
//!    pick them; state a version cannot express is an error (Kafka's default loss handler
//!    throws too), not a silent loss;
//! 3. a control batch with the `SnapshotFooterRecord` (type 4).
//!
//! Every batch has the snapshot's epoch as partition leader epoch and offsets counted from
//! 0 inside the snapshot. Records are handed to the batches in groups of 1024 (Kafka's
//! `SnapshotEmitter` batch size); a group goes into the current batch if the batch stays
//! within [`MAX_BATCH_BYTES`] (`KafkaRaftClient.MAX_BATCH_SIZE_BYTES`), else it starts the
//! next one. No compression (Kafka's default for snapshots).
//!
//! # Writing
//!
//! As Kafka's `FileRawSnapshotWriter`: the batches go to `<name>.checkpoint.part`, which is
//! fsynced, renamed to `<name>.checkpoint` atomically, and the directory fsynced. A crash
//! leaves at most a `.part` file, which [`remove_leftovers`] deletes at start-up (Kafka's
//! `KafkaMetadataLog.recoverSnapshots`). An existing snapshot with the same id is never
//! replaced ([`SnapshotError::Exists`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use gregor_protocol::messages::config_record::ConfigRecord;
use gregor_protocol::messages::feature_level_record::FeatureLevelRecord;
use gregor_protocol::messages::kraft_version_record::KRaftVersionRecord;
use gregor_protocol::messages::partition_record::PartitionRecord;
use gregor_protocol::messages::producer_ids_record::ProducerIdsRecord;
use gregor_protocol::messages::register_broker_record::{
    BrokerEndpoint, BrokerFeature, RegisterBrokerRecord,
};
use gregor_protocol::messages::register_controller_record::{
    ControllerEndpoint, ControllerFeature, RegisterControllerRecord,
};
use gregor_protocol::messages::snapshot_footer_record::SnapshotFooterRecord;
use gregor_protocol::messages::snapshot_header_record::SnapshotHeaderRecord;
use gregor_protocol::messages::topic_record::TopicRecord;
use gregor_protocol::messages::voters_record::VotersRecord;
use gregor_protocol::metadata_frame::VersionedRecord;
use gregor_protocol::records::{
    Batch, ControlRecordKey, ControlRecordType, NewRecord, RecordBatchBuilder, RecordBatches,
};
use gregor_protocol::varint::{varint_len, varlong_len};
use gregor_protocol::{Decodable, Encodable, MetadataRecord};

use super::image::{
    BrokerRegistration, ControllerRegistration, DIRECTORY_MIGRATING, METADATA_VERSION_FEATURE,
    MetadataImage, PartitionImage,
};
use super::metadata_log::MAX_BATCH_BYTES;
use super::replay::{SNAPSHOT_SUFFIX, SnapshotId};

/// Suffix of a snapshot being written (Kafka's `Snapshots.PARTIAL_SUFFIX`).
pub const PARTIAL_SUFFIX: &str = ".checkpoint.part";
/// Suffix of a snapshot marked for deletion (Kafka's `Snapshots.DELETE_SUFFIX`).
pub const DELETED_SUFFIX: &str = ".checkpoint.deleted";
/// Records handed to the batch accumulator at a time (Kafka's `SnapshotEmitter`
/// `DEFAULT_BATCH_SIZE`).
pub const RECORDS_PER_APPEND: usize = 1024;

/// Size of a v2 batch header (`DefaultRecordBatch.RECORD_BATCH_OVERHEAD`).
const BATCH_HEADER_BYTES: usize = 61;

/// Why a snapshot could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A snapshot with this id exists already (Kafka does not write it again).
    #[error("the snapshot {} exists already", .0.file_name())]
    Exists(SnapshotId),
    /// The image holds state the records of its `metadata.version` cannot express, or no
    /// `metadata.version` at all (Kafka's `UnwritableMetadataException`).
    #[error("cannot write the metadata image as a snapshot: {0}")]
    Unwritable(String),
    /// A record could not be encoded, or a group of records exceeds the batch limit.
    #[error("cannot encode the snapshot: {0}")]
    Encode(String),
    /// The snapshot is not readable as one (no header, bad batch).
    #[error("{}: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The KRaft membership written into the header batch (Kafka's `kraft.version` and voter
/// set at the snapshot's last offset).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KRaftState {
    /// `kraft.version`: 0 (a static quorum) writes neither `KRaftVersionRecord` nor
    /// `VotersRecord`.
    pub kraft_version: i16,
    /// The voters, written only when `kraft_version` is 1 or more.
    pub voters: Option<VotersRecord>,
}

/// A snapshot that was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenSnapshot {
    /// Its id.
    pub id: SnapshotId,
    /// The `.checkpoint` file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Metadata records in it (control records not counted).
    pub records: usize,
    /// Batches in it, the two control batches included.
    pub batches: usize,
}

/// Record versions for a `metadata.version` (Kafka's `MetadataVersion` methods).
#[derive(Clone, Copy, Debug)]
struct Versions {
    level: i16,
}

impl Versions {
    /// 3.4-IV0: `isMigrationSupported`.
    fn migration(self) -> bool {
        self.level >= 8
    }
    /// 3.7-IV0: `isControllerRegistrationSupported`.
    fn controller_registration(self) -> bool {
        self.level >= 15
    }
    /// 3.7-IV2: `isDirectoryAssignmentSupported`.
    fn directory_assignment(self) -> bool {
        self.level >= 17
    }
    /// 4.0-IV1: `isElrSupported`.
    fn elr(self) -> bool {
        self.level >= 23
    }
    /// `partitionRecordVersion`.
    fn partition_record(self) -> i16 {
        if self.elr() {
            2
        } else if self.directory_assignment() {
            1
        } else {
            0
        }
    }
    /// `registerBrokerRecordVersion`; 4 (cordoned log directories) from 4.3-IV0 (30).
    fn register_broker_record(self) -> i16 {
        if self.level >= 30 {
            4
        } else if self.directory_assignment() {
            3
        } else if self.migration() {
            2
        } else {
            1
        }
    }
}

fn v0(record: MetadataRecord) -> VersionedRecord {
    VersionedRecord { version: 0, record }
}

/// The records that rebuild `image`, in the order of Kafka's `MetadataImage.write` (see the
/// module docs). Fails if the image has no `metadata.version` or holds state its records
/// cannot express. A pending transaction is not part of the image and is not written.
pub fn image_records(image: &MetadataImage) -> Result<Vec<VersionedRecord>, SnapshotError> {
    let Some(level) = image.metadata_version() else {
        return Err(SnapshotError::Unwritable(
            "the image has no metadata.version".to_string(),
        ));
    };
    let versions = Versions { level };
    let mut out = Vec::new();

    // FeaturesImage: metadata.version first (version 0, so that any reader can take it).
    out.push(v0(MetadataRecord::FeatureLevel(FeatureLevelRecord {
        name: METADATA_VERSION_FEATURE.into(),
        feature_level: level,
        ..Default::default()
    })));
    for (name, feature_level) in image.features() {
        if name != METADATA_VERSION_FEATURE {
            out.push(v0(MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: name.into(),
                feature_level,
                ..Default::default()
            })));
        }
    }

    // ClusterImage: brokers, then controllers.
    for broker in image.brokers().values() {
        out.push(broker_record(broker, versions)?);
    }
    if !image.controllers().is_empty() {
        if !versions.controller_registration() {
            return Err(loss(level, "controller registration data"));
        }
        for controller in image.controllers().values() {
            out.push(controller_record(controller));
        }
    }

    // TopicsImage: each topic, then its partitions in index order.
    for topic in image.topics() {
        out.push(v0(MetadataRecord::Topic(TopicRecord {
            name: topic.name.as_str().into(),
            topic_id: topic.id,
            ..Default::default()
        })));
        for (index, partition) in &topic.partitions {
            out.push(partition_record(topic.id, *index, partition, versions)?);
        }
    }

    // ConfigurationsImage: every resource (topics, brokers, client metrics, groups, ...).
    for (resource, configs) in image.configs() {
        for (name, value) in configs {
            out.push(v0(MetadataRecord::Config(ConfigRecord {
                resource_type: resource.resource_type,
                resource_name: resource.name.as_str().into(),
                name: name.as_str().into(),
                value: Some(value.as_str().into()),
                ..Default::default()
            })));
        }
    }

    // ClientQuotasImage: one record per entity and key.
    for record in image.client_quotas().records() {
        out.push(v0(MetadataRecord::ClientQuota(record)));
    }

    // ProducerIdsImage: written when a block was ever handed out.
    if let Some(next_producer_id) = image.next_producer_id()
        && next_producer_id >= 0
    {
        out.push(v0(MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: -1,
            broker_epoch: -1,
            next_producer_id,
            ..Default::default()
        })));
    }

    // AclsImage: every ACL, under its id (Kafka's MetadataImage writes ACLs before
    // SCRAM credentials).
    for (id, acl) in image.acls().iter() {
        out.push(v0(MetadataRecord::AccessControlEntry(acl.to_record(*id))));
    }

    // ScramImage: every credential.
    for record in image.scram_credentials().values() {
        out.push(v0(MetadataRecord::UserScramCredential(record.clone())));
    }
    Ok(out)
}

fn loss(level: i16, what: &str) -> SnapshotError {
    SnapshotError::Unwritable(format!("metadata.version {level} cannot express {what}"))
}

/// Kafka's `BrokerRegistration.toRecord`.
fn broker_record(
    broker: &BrokerRegistration,
    versions: Versions,
) -> Result<VersionedRecord, SnapshotError> {
    let version = versions.register_broker_record();
    if broker.is_migrating_zk_broker && !versions.migration() {
        return Err(loss(
            versions.level,
            "the isMigratingZkBroker state of a broker",
        ));
    }
    if !broker.directories.is_empty() && !versions.directory_assignment() {
        return Err(loss(
            versions.level,
            "the online log directories of a broker",
        ));
    }
    if !broker.cordoned_directories.is_empty() && version < 4 {
        return Err(loss(
            versions.level,
            "the cordoned log directories of a broker",
        ));
    }
    let record = RegisterBrokerRecord {
        broker_id: broker.id,
        is_migrating_zk_broker: broker.is_migrating_zk_broker,
        incarnation_id: broker.incarnation_id,
        broker_epoch: broker.epoch,
        end_points: broker
            .endpoints
            .iter()
            .map(|e| BrokerEndpoint {
                name: e.listener.as_str().into(),
                host: e.host.as_str().into(),
                port: e.port,
                security_protocol: e.security_protocol,
                ..Default::default()
            })
            .collect(),
        features: broker
            .supported_features
            .iter()
            .map(|(name, range)| BrokerFeature {
                name: name.as_str().into(),
                min_supported_version: range.min,
                max_supported_version: range.max,
                ..Default::default()
            })
            .collect(),
        rack: broker.rack.as_deref().map(Into::into),
        fenced: broker.fenced,
        in_controlled_shutdown: broker.in_controlled_shutdown,
        log_dirs: broker.directories.clone(),
        cordoned_log_dirs: (version >= 4).then(|| broker.cordoned_directories.clone()),
        ..Default::default()
    };
    Ok(VersionedRecord {
        version,
        record: MetadataRecord::RegisterBroker(record),
    })
}

/// Kafka's `ControllerRegistration.toRecord` (version 0).
fn controller_record(controller: &ControllerRegistration) -> VersionedRecord {
    v0(MetadataRecord::RegisterController(
        RegisterControllerRecord {
            controller_id: controller.id,
            incarnation_id: controller.incarnation_id,
            zk_migration_ready: controller.zk_migration_ready,
            end_points: controller
                .endpoints
                .iter()
                .map(|e| ControllerEndpoint {
                    name: e.listener.as_str().into(),
                    host: e.host.as_str().into(),
                    port: e.port,
                    security_protocol: e.security_protocol,
                    ..Default::default()
                })
                .collect(),
            features: controller
                .supported_features
                .iter()
                .map(|(name, range)| ControllerFeature {
                    name: name.as_str().into(),
                    min_supported_version: range.min,
                    max_supported_version: range.max,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        },
    ))
}

/// Kafka's `PartitionRegistration.toRecord`: the ELR lists only when not empty (they are
/// tagged fields), directories from 3.7-IV2 on.
fn partition_record(
    topic_id: uuid::Uuid,
    partition_id: i32,
    partition: &PartitionImage,
    versions: Versions,
) -> Result<VersionedRecord, SnapshotError> {
    let non_empty = |list: &Vec<i32>| (!list.is_empty()).then(|| list.clone());
    let (eligible_leader_replicas, last_known_elr) = if versions.elr() {
        (
            non_empty(&partition.eligible_leader_replicas),
            non_empty(&partition.last_known_elr),
        )
    } else {
        if !partition.eligible_leader_replicas.is_empty() || !partition.last_known_elr.is_empty() {
            return Err(loss(
                versions.level,
                "the eligible leader replicas of a partition",
            ));
        }
        (None, None)
    };
    let directories = if versions.directory_assignment() {
        partition.directories.clone()
    } else {
        if partition
            .directories
            .iter()
            .any(|d| *d != DIRECTORY_MIGRATING)
        {
            return Err(loss(
                versions.level,
                "the directory assignment state of one or more replicas",
            ));
        }
        Vec::new()
    };
    Ok(VersionedRecord {
        version: versions.partition_record(),
        record: MetadataRecord::Partition(PartitionRecord {
            partition_id,
            topic_id,
            replicas: partition.replicas.clone(),
            isr: partition.isr.clone(),
            removing_replicas: partition.removing_replicas.clone(),
            adding_replicas: partition.adding_replicas.clone(),
            leader: partition.leader,
            leader_recovery_state: partition.leader_recovery_state.as_i8(),
            leader_epoch: partition.leader_epoch,
            partition_epoch: partition.partition_epoch,
            directories,
            eligible_leader_replicas,
            last_known_elr,
            ..Default::default()
        }),
    })
}

/// Size of a record with a null key, `value_len` bytes of value and no headers at
/// `offset_delta` (timestamp delta 0), its length prefix included.
fn record_size(offset_delta: i32, value_len: usize) -> usize {
    let body = 1 // attributes
        + varlong_len(0)
        + varint_len(offset_delta)
        + varint_len(-1)
        + varint_len(value_len as i32)
        + value_len
        + varint_len(0);
    varint_len(body as i32) + body
}

fn control_record(record_type: ControlRecordType, value: Bytes, timestamp: i64) -> NewRecord {
    let key = ControlRecordKey::new(record_type).encode();
    NewRecord::new(timestamp, Some(key), Some(value))
}

fn encoded<T: Encodable>(message: &T, version: i16) -> Result<Bytes, SnapshotError> {
    message
        .to_bytes(version)
        .map_err(|e| SnapshotError::Encode(e.to_string()))
}

/// Encodes a snapshot of `records` (see the module docs) with the batches' epoch `epoch`,
/// `last_contained_log_timestamp` in the header and `now` as the records' timestamp.
/// Returns the bytes and the number of batches.
pub fn encode_snapshot(
    epoch: i32,
    records: &[VersionedRecord],
    last_contained_log_timestamp: i64,
    kraft: &KRaftState,
    now: i64,
) -> Result<(Vec<u8>, usize), SnapshotError> {
    let mut out = Vec::new();
    let mut batches = 0;
    let mut next_offset = 0i64;

    // The header batch (RecordsSnapshotWriter.Builder.build).
    let header = SnapshotHeaderRecord {
        version: 0,
        last_contained_log_timestamp,
        ..Default::default()
    };
    let mut control = vec![control_record(
        ControlRecordType::SnapshotHeader,
        encoded(&header, 0)?,
        now,
    )];
    if kraft.kraft_version >= 1 {
        let version = KRaftVersionRecord {
            version: 0,
            kraft_version: kraft.kraft_version,
            ..Default::default()
        };
        control.push(control_record(
            ControlRecordType::KRaftVersion,
            encoded(&version, 0)?,
            now,
        ));
        if let Some(voters) = &kraft.voters {
            control.push(control_record(
                ControlRecordType::KRaftVoters,
                encoded(voters, 0)?,
                now,
            ));
        }
    }
    let build_control = |base: i64, records: &[NewRecord]| {
        RecordBatchBuilder::new()
            .control(true)
            .base_offset(base)
            .partition_leader_epoch(epoch)
            .build(records)
            .map_err(|e| SnapshotError::Encode(e.to_string()))
    };
    out.extend_from_slice(&build_control(next_offset, &control)?);
    batches += 1;
    next_offset += control.len() as i64;

    // Data batches: groups of RECORDS_PER_APPEND records, as many as fit in a batch.
    let mut current: Vec<NewRecord> = Vec::new();
    let mut current_size = BATCH_HEADER_BYTES;
    let flush =
        |current: &mut Vec<NewRecord>, base: i64, out: &mut Vec<u8>| -> Result<(), SnapshotError> {
            let batch = RecordBatchBuilder::new()
                .base_offset(base)
                .partition_leader_epoch(epoch)
                .build(current.iter())
                .map_err(|e| SnapshotError::Encode(e.to_string()))?;
            out.extend_from_slice(&batch);
            current.clear();
            Ok(())
        };
    let mut batch_base = next_offset;
    for group in records.chunks(RECORDS_PER_APPEND) {
        let mut values = Vec::with_capacity(group.len());
        for versioned in group {
            let mut buf = BytesMut::with_capacity(versioned.record.framed_len(versioned.version));
            versioned
                .record
                .encode_framed(&mut buf, versioned.version)
                .map_err(|e| SnapshotError::Encode(e.to_string()))?;
            values.push(buf.freeze());
        }
        // BatchBuilder.bytesNeeded: the group's size at the offsets it would get here.
        let size_here = |base: i64| -> usize {
            values
                .iter()
                .enumerate()
                .map(|(i, v)| record_size((next_offset + i as i64 - base) as i32, v.len()))
                .sum()
        };
        if !current.is_empty() && current_size + size_here(batch_base) > MAX_BATCH_BYTES {
            flush(&mut current, batch_base, &mut out)?;
            batches += 1;
            batch_base = next_offset;
            current_size = BATCH_HEADER_BYTES;
        }
        let needed = size_here(batch_base);
        if current.is_empty() && BATCH_HEADER_BYTES + needed > MAX_BATCH_BYTES {
            return Err(SnapshotError::Encode(format!(
                "the total record(s) size of {} exceeds the maximum allowed batch size of \
                 {MAX_BATCH_BYTES}",
                BATCH_HEADER_BYTES + needed
            )));
        }
        current_size += needed;
        for value in values {
            current.push(NewRecord::new(now, None, Some(value)));
        }
        next_offset += group.len() as i64;
    }
    if !current.is_empty() {
        flush(&mut current, batch_base, &mut out)?;
        batches += 1;
    }

    // The footer batch (RecordsSnapshotWriter.finalizeSnapshotWithFooter).
    let footer = SnapshotFooterRecord {
        version: 0,
        ..Default::default()
    };
    let footer = [control_record(
        ControlRecordType::SnapshotFooter,
        encoded(&footer, 0)?,
        now,
    )];
    out.extend_from_slice(&build_control(next_offset, &footer)?);
    batches += 1;
    Ok((out, batches))
}

/// Fsyncs a directory so that renames in it are durable (best effort: not every platform
/// can open directories).
fn sync_dir(dir: &Path) {
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

/// The name of the partial file of snapshot `id`.
fn partial_name(id: SnapshotId) -> String {
    let name = id.file_name();
    let stem = name.strip_suffix(SNAPSHOT_SUFFIX).unwrap_or(&name);
    format!("{stem}{PARTIAL_SUFFIX}")
}

/// Writes `image` as snapshot `id` into the partition directory `dir` (see the module
/// docs). Blocking file I/O; encoding and writing a large image takes a while, so call it
/// on a thread of its own with a clone of the image (clones are cheap).
pub fn write_snapshot(
    dir: &Path,
    id: SnapshotId,
    image: &MetadataImage,
    last_contained_log_timestamp: i64,
    kraft: &KRaftState,
) -> Result<WrittenSnapshot, SnapshotError> {
    let path = dir.join(id.file_name());
    if path.exists() {
        return Err(SnapshotError::Exists(id));
    }
    let records = image_records(image)?;
    let now = now_ms();
    let (bytes, batches) =
        encode_snapshot(id.epoch, &records, last_contained_log_timestamp, kraft, now)?;
    let partial = dir.join(partial_name(id));
    let result = (|| {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&partial)
            .map_err(io_error(&partial))?;
        file.write_all(&bytes).map_err(io_error(&partial))?;
        file.sync_all().map_err(io_error(&partial))?;
        drop(file);
        fs::rename(&partial, &path).map_err(io_error(&path))?;
        sync_dir(dir);
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&partial);
        return Err(e);
    }
    Ok(WrittenSnapshot {
        id,
        path,
        size: bytes.len() as u64,
        records: records.len(),
        batches,
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The `LastContainedLogTimestamp` of a snapshot's header (Kafka's
/// `Snapshots.lastContainedLogTimestamp`), reading only its first batch.
pub fn read_last_contained_timestamp(path: &Path) -> Result<i64, SnapshotError> {
    let malformed = |reason: &str| SnapshotError::Malformed {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let mut file = File::open(path).map_err(io_error(path))?;
    // The header batch is small: its length field says how much to read.
    let mut head = [0u8; 12];
    io::Read::read_exact(&mut file, &mut head).map_err(io_error(path))?;
    let length = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
    let Some(length) = usize::try_from(length)
        .ok()
        .filter(|l| *l <= MAX_BATCH_BYTES)
    else {
        return Err(malformed("the first batch has an invalid length"));
    };
    let mut data = vec![0u8; 12 + length];
    data[..12].copy_from_slice(&head);
    io::Read::read_exact(&mut file, &mut data[12..]).map_err(io_error(path))?;
    let batch = match RecordBatches::new(Bytes::from(data)).next() {
        Some(Ok(Batch::V2(batch))) if batch.is_control() => batch,
        _ => {
            return Err(malformed(
                "the snapshot does not start with a control batch",
            ));
        }
    };
    batch
        .validate()
        .map_err(|e| malformed(&format!("the first batch is corrupt: {e}")))?;
    for record in batch.records() {
        let record = record.map_err(|e| malformed(&e.to_string()))?;
        let key = record
            .control_key()
            .map_err(|e| malformed(&e.to_string()))?;
        if key.record_type != ControlRecordType::SnapshotHeader {
            continue;
        }
        let Some(mut value) = record.value.clone() else {
            return Err(malformed("the SnapshotHeaderRecord has no value"));
        };
        let header = SnapshotHeaderRecord::decode(&mut value, 0)
            .map_err(|e| malformed(&format!("bad SnapshotHeaderRecord: {e}")))?;
        return Ok(header.last_contained_log_timestamp);
    }
    Err(malformed("the snapshot has no SnapshotHeaderRecord"))
}

/// What [`remove_leftovers`] deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// `.checkpoint.part` and `.checkpoint.deleted` files removed.
    pub removed: Vec<PathBuf>,
}

/// Deletes what an interrupted snapshot write or deletion left in the partition directory
/// `dir` (`*.checkpoint.part`, `*.checkpoint.deleted`), as Kafka's
/// `KafkaMetadataLog.recoverSnapshots` does at start-up. A missing directory has none.
pub fn remove_leftovers(dir: &Path) -> Result<Leftovers, SnapshotError> {
    let mut out = Leftovers::default();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_error(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(PARTIAL_SUFFIX) || name.ends_with(DELETED_SUFFIX) {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_error(&path))?;
            tracing::info!(file = %path.display(), "deleted an unneeded snapshot file");
            out.removed.push(path);
        }
    }
    Ok(out)
}
