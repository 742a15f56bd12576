//! The `__consumer_offsets` records in Kafka's exact format, and their replay.
//!
//! ```text
//! key:   int16 record type | key fields        1 = OffsetCommitKey (group, topic, partition)
//!                                              2 = GroupMetadataKey (group)
//!                                              0 = legacy offset key (read only)
//! value: int16 version | value fields          null = tombstone
//! ```
//!
//! Kafka 4 writes OffsetCommitValue v3 (v1 when the commit carries an expire timestamp,
//! OffsetCommit v2-v4 with a retention time) and GroupMetadataValue v3, one batch per
//! coordinator write, uncompressed, with create time.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use gregor_protocol::messages::group_metadata_key::GroupMetadataKey;
use gregor_protocol::messages::offset_commit_key::OffsetCommitKey;
use gregor_protocol::messages::offset_commit_value::OffsetCommitValue;
use gregor_protocol::messages::{GroupCoordinatorRecordKey, GroupCoordinatorRecordValue};
use gregor_protocol::records::{
    Batch, ControlRecordKey, ControlRecordType, NewRecord, RecordBatchBuilder, RecordBatches,
    RecordsError,
};

use super::group::{ClassicGroup, OffsetAndMetadata, Record};

/// The version Kafka 4 writes GroupMetadataValue at.
pub const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// The version Kafka 4 writes OffsetCommitValue at: 1 with an expire timestamp, else 3.
pub fn offset_commit_value_version(has_expire_timestamp: bool) -> i16 {
    if has_expire_timestamp { 1 } else { 3 }
}

/// The key and value bytes of `record` for `group_id`.
pub fn encode(group_id: &str, record: &Record) -> (Bytes, Option<Bytes>) {
    let (key, value) = match record {
        Record::Consumer(r) => (
            r.key.clone(),
            r.value
                .clone()
                .map(|v| (v, super::consumer::records::VALUE_VERSION)),
        ),
        Record::GroupMetadata(value) => (
            GroupCoordinatorRecordKey::GroupMetadata(GroupMetadataKey {
                group: group_id.into(),
            }),
            Some((
                GroupCoordinatorRecordValue::GroupMetadata(value.clone()),
                GROUP_METADATA_VALUE_VERSION,
            )),
        ),
        Record::GroupTombstone => (
            GroupCoordinatorRecordKey::GroupMetadata(GroupMetadataKey {
                group: group_id.into(),
            }),
            None,
        ),
        Record::Offset {
            topic,
            partition,
            value,
        } => (
            GroupCoordinatorRecordKey::OffsetCommit(OffsetCommitKey {
                group: group_id.into(),
                topic: topic.as_str().into(),
                partition: *partition,
            }),
            value.as_ref().map(|offset| {
                (
                    GroupCoordinatorRecordValue::OffsetCommit(OffsetCommitValue {
                        offset: offset.committed_offset,
                        leader_epoch: offset.leader_epoch.unwrap_or(-1),
                        metadata: offset.metadata.as_str().into(),
                        commit_timestamp: offset.commit_timestamp_ms,
                        expire_timestamp: offset.expire_timestamp_ms.unwrap_or(-1),
                        ..Default::default()
                    }),
                    offset_commit_value_version(offset.expire_timestamp_ms.is_some()),
                )
            }),
        ),
    };
    let mut key_buf = BytesMut::with_capacity(key.encoded_len());
    // The generated encoders only fail on values out of their schema's range (a string
    // longer than 32767 bytes); group ids and topic names are far shorter.
    if let Err(err) = key.encode(&mut key_buf) {
        tracing::error!("encoding a __consumer_offsets key: {err}");
    }
    let value = value.map(|(value, version)| {
        let mut buf = BytesMut::with_capacity(value.encoded_len(version));
        if let Err(err) = value.encode(&mut buf, version) {
            tracing::error!("encoding a __consumer_offsets value: {err}");
        }
        buf.freeze()
    });
    (key_buf.freeze(), value)
}

/// One record batch holding `records` of `group_id`, stamped `now_ms`.
pub fn build_batch(group_id: &str, records: &[Record], now_ms: i64) -> Result<Bytes, RecordsError> {
    let encoded: Vec<NewRecord> = records
        .iter()
        .map(|record| {
            let (key, value) = encode(group_id, record);
            NewRecord::new(now_ms, Some(key), value)
        })
        .collect();
    RecordBatchBuilder::new().build(&encoded)
}

/// What a record read back from `__consumer_offsets` says.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    /// An offset commit or its tombstone.
    Offset {
        /// Group.
        group: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The offset; `None` for a tombstone.
        value: Option<OffsetAndMetadata>,
    },
    /// Group metadata or its tombstone.
    GroupMetadata {
        /// Group.
        group: String,
        /// The metadata; `None` for a tombstone.
        value: Option<gregor_protocol::messages::group_metadata_value::GroupMetadataValue>,
    },
    /// A consumer-group (KIP-848) record.
    Consumer {
        /// Group.
        group: String,
        /// The record.
        record: Box<super::consumer::records::ConsumerRecord>,
    },
}

/// Decodes one record; `Ok(None)` for record types this coordinator does not use
/// (consumer, share and streams group records of newer Kafka versions).
pub fn decode(key: &Bytes, value: Option<&Bytes>) -> Result<Option<Decoded>, String> {
    if key.len() < 2 {
        return Err(format!("key of {} bytes", key.len()));
    }
    let record_type = i16::from_be_bytes([key[0], key[1]]);
    if (3..=8).contains(&record_type) || record_type == 16 {
        return super::consumer::records::decode(key, value);
    }
    if !(0..=2).contains(&record_type) {
        return Ok(None);
    }
    let parsed = GroupCoordinatorRecordKey::decode(&mut key.clone()).map_err(|e| e.to_string())?;
    let (group, topic, partition) = match parsed {
        GroupCoordinatorRecordKey::LegacyOffsetCommit(k) => {
            (k.group.to_string(), Some(k.topic.to_string()), k.partition)
        }
        GroupCoordinatorRecordKey::OffsetCommit(k) => {
            (k.group.to_string(), Some(k.topic.to_string()), k.partition)
        }
        GroupCoordinatorRecordKey::GroupMetadata(k) => (k.group.to_string(), None, -1),
        // Types past 2 returned above.
        _ => return Ok(None),
    };
    match topic {
        Some(topic) => {
            let value = match value {
                None => None,
                Some(bytes) => {
                    // Legacy keys carry the same offset values: decode them as type 1.
                    let (value, _) = GroupCoordinatorRecordValue::decode(1, &mut bytes.clone())
                        .map_err(|e| e.to_string())?;
                    let GroupCoordinatorRecordValue::OffsetCommit(v) = value else {
                        return Err("offset key with a non-offset value".to_string());
                    };
                    Some(OffsetAndMetadata {
                        committed_offset: v.offset,
                        leader_epoch: Some(v.leader_epoch).filter(|e| *e >= 0),
                        metadata: v.metadata.to_string(),
                        commit_timestamp_ms: v.commit_timestamp,
                        expire_timestamp_ms: Some(v.expire_timestamp).filter(|t| *t != -1),
                    })
                }
            };
            Ok(Some(Decoded::Offset {
                group,
                topic,
                partition,
                value,
            }))
        }
        None => {
            let value = match value {
                None => None,
                Some(bytes) => {
                    let (value, _) = GroupCoordinatorRecordValue::decode(2, &mut bytes.clone())
                        .map_err(|e| e.to_string())?;
                    let GroupCoordinatorRecordValue::GroupMetadata(v) = value else {
                        return Err("group key with a non-group value".to_string());
                    };
                    Some(v)
                }
            };
            Ok(Some(Decoded::GroupMetadata { group, value }))
        }
    }
}

/// The groups rebuilt from `__consumer_offsets` (Kafka's replay: the last value of a key
/// wins, a null value deletes it).
#[derive(Debug, Default)]
pub struct Replay {
    /// The groups, by id.
    pub groups: BTreeMap<String, ClassicGroup>,
    /// Records applied.
    pub records: u64,
    /// Records that could not be decoded.
    pub skipped: u64,
    /// Transactional offsets whose marker has not been read (yet), by group and producer.
    pub pending_txn_offsets: BTreeMap<(String, i64), super::txn_offsets::PendingOffsets>,
}

impl Replay {
    /// Applies one decoded record.
    pub fn apply(&mut self, record: Decoded) {
        self.records += 1;
        match record {
            Decoded::Offset {
                group,
                topic,
                partition,
                value: Some(offset),
            } => {
                // Offsets committed without group management make a "simple" group.
                self.groups
                    .entry(group.clone())
                    .or_insert_with(|| ClassicGroup::new(&group))
                    .offsets
                    .entry(topic)
                    .or_default()
                    .insert(partition, offset);
            }
            Decoded::Offset {
                group,
                topic,
                partition,
                value: None,
            } => {
                if let Some(g) = self.groups.get_mut(&group) {
                    g.remove_offset(&topic, partition);
                }
            }
            Decoded::GroupMetadata {
                group,
                value: Some(value),
            } => {
                let mut loaded = ClassicGroup::from_record(&group, &value);
                if let Some(previous) = self.groups.remove(&group) {
                    loaded.offsets = previous.offsets;
                }
                self.groups.insert(group, loaded);
            }
            Decoded::GroupMetadata { group, value: None } => {
                // A consumer group of the same id (written after the classic group gave
                // way) stays, and so do the offsets (an upgrade writes this tombstone and
                // keeps them; a deletion writes their tombstones first).
                if let Some(previous) = self.groups.remove(&group)
                    && (previous.consumer.is_some() || !previous.offsets.is_empty())
                {
                    let mut holder = ClassicGroup::new(&group);
                    holder.consumer = previous.consumer;
                    holder.offsets = previous.offsets;
                    self.groups.insert(group, holder);
                }
            }
            Decoded::Consumer { group, record } => {
                let holder = self
                    .groups
                    .entry(group.clone())
                    .or_insert_with(|| ClassicGroup::new(&group));
                let consumer = holder
                    .consumer
                    .get_or_insert_with(|| Box::new(super::consumer::ConsumerGroup::new(&group)));
                if !consumer.replay(&record) {
                    holder.consumer = None;
                }
            }
        }
    }

    /// Applies every record of `bytes` (whole batches as a log read returns them); returns
    /// the offset after the last batch read.
    pub fn apply_batches(&mut self, bytes: Bytes, mut next_offset: i64) -> i64 {
        for batch in RecordBatches::new(bytes) {
            let batch = match batch {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::warn!("unreadable batch in __consumer_offsets: {err}");
                    break;
                }
            };
            match batch {
                Batch::V2(batch) => {
                    next_offset = batch.next_offset();
                    if batch.is_control() {
                        // A transaction marker: its producer's pending offsets are
                        // committed or dropped (Kafka's replay of `onTransactionCompleted`).
                        let commit = batch.records().next().and_then(|r| r.ok()).and_then(|r| {
                            let key = r.key?;
                            ControlRecordKey::parse(&key).ok()
                        });
                        let producer_id = batch.header().producer_id;
                        let taken: Vec<(String, super::txn_offsets::PendingOffsets)> = {
                            let keys: Vec<(String, i64)> = self
                                .pending_txn_offsets
                                .keys()
                                .filter(|(_, p)| *p == producer_id)
                                .cloned()
                                .collect();
                            keys.into_iter()
                                .filter_map(|k| {
                                    let v = self.pending_txn_offsets.remove(&k)?;
                                    Some((k.0, v))
                                })
                                .collect()
                        };
                        if commit.is_some_and(|k| k.record_type == ControlRecordType::Commit) {
                            for (group, offsets) in taken {
                                for ((topic, partition), value) in offsets {
                                    self.apply(Decoded::Offset {
                                        group: group.clone(),
                                        topic,
                                        partition,
                                        value: Some(value),
                                    });
                                }
                            }
                        }
                        continue;
                    }
                    if batch.is_transactional() {
                        let producer_id = batch.header().producer_id;
                        for record in batch.records().flatten() {
                            let Some(key) = record.key.as_ref() else {
                                continue;
                            };
                            if let Ok(Some(Decoded::Offset {
                                group,
                                topic,
                                partition,
                                value: Some(value),
                            })) = decode(key, record.value.as_ref())
                            {
                                self.pending_txn_offsets
                                    .entry((group, producer_id))
                                    .or_default()
                                    .insert((topic, partition), value);
                            }
                        }
                        continue;
                    }
                    for record in batch.records() {
                        match record {
                            Ok(record) => {
                                self.apply_raw(record.key.as_ref(), record.value.as_ref())
                            }
                            Err(err) => {
                                tracing::warn!("unreadable record in __consumer_offsets: {err}");
                                self.skipped += 1;
                            }
                        }
                    }
                }
                Batch::Legacy(message) => {
                    next_offset = message.offset + 1;
                    match message.messages() {
                        Ok(inner) => {
                            for m in inner {
                                self.apply_raw(m.key.as_ref(), m.value.as_ref());
                            }
                        }
                        Err(err) => {
                            tracing::warn!("unreadable message in __consumer_offsets: {err}");
                            self.skipped += 1;
                        }
                    }
                }
            }
        }
        next_offset
    }

    fn apply_raw(&mut self, key: Option<&Bytes>, value: Option<&Bytes>) {
        let Some(key) = key else {
            self.skipped += 1;
            return;
        };
        match decode(key, value) {
            Ok(Some(decoded)) => self.apply(decoded),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!("undecodable record in __consumer_offsets: {err}");
                self.skipped += 1;
            }
        }
    }
}
