//! `__transaction_state` records in Kafka's format (Kafka's `TransactionLog`), and their
//! replay.
//!
//! ```text
//! key:   int16 version (0) | TransactionLogKey { transactional_id }
//! value: int16 version     | TransactionLogValue        null = tombstone (expired id)
//! ```
//!
//! The value is written at version 1 (flexible, with the tagged previous/next producer id
//! and client transaction version) once `transaction.version` is 1 or more, else at
//! version 0, as Kafka's `TransactionVersion.transactionLogValueVersion`. An Empty
//! transaction carries null partitions. Batches are uncompressed (Kafka enforces
//! `compression.type=uncompressed` on the topic).

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use gregor_protocol::messages::transaction_log_key::TransactionLogKey;
use gregor_protocol::messages::transaction_log_value::{PartitionsSchema, TransactionLogValue};
use gregor_protocol::messages::{
    TransactionCoordinatorRecordKey, TransactionCoordinatorRecordValue,
};
use gregor_protocol::records::{Batch, NewRecord, RecordBatchBuilder, RecordBatches, RecordsError};

use super::state::{NO_PRODUCER_EPOCH, Transit, TxnMetadata, TxnState};
use crate::storage::PartitionLog;

/// The value version for a finalized `transaction.version`.
pub fn value_version(transaction_version: i16) -> i16 {
    if transaction_version >= 1 { 1 } else { 0 }
}

/// The key bytes of `transactional_id`.
pub fn encode_key(transactional_id: &str) -> Bytes {
    let key = TransactionCoordinatorRecordKey::TransactionLog(TransactionLogKey {
        transactional_id: transactional_id.into(),
    });
    let mut buf = BytesMut::with_capacity(key.encoded_len());
    if let Err(err) = key.encode(&mut buf) {
        // Only a transactional id over 32767 bytes fails, and the request decoder
        // cannot produce one.
        tracing::error!("encoding a {} key: {err}", super::TRANSACTION_STATE_TOPIC);
    }
    buf.freeze()
}

/// The value bytes of `transit` (Kafka's `TransactionLog.valueToBytes`).
pub fn encode_value(transit: &Transit, transaction_version: i16) -> Bytes {
    let partitions = if transit.state == TxnState::Empty {
        None
    } else {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in &transit.partitions {
            by_topic.entry(topic).or_default().push(*partition);
        }
        Some(
            by_topic
                .into_iter()
                .map(|(topic, partition_ids)| PartitionsSchema {
                    topic: topic.into(),
                    partition_ids,
                    ..Default::default()
                })
                .collect(),
        )
    };
    let version = value_version(transaction_version);
    // Version 0 has no tagged fields: they are left at their defaults.
    let flexible = version >= 1;
    let value = TransactionCoordinatorRecordValue::TransactionLog(TransactionLogValue {
        producer_id: transit.producer_id,
        previous_producer_id: if flexible {
            transit.prev_producer_id
        } else {
            -1
        },
        next_producer_id: if flexible {
            transit.next_producer_id
        } else {
            -1
        },
        producer_epoch: transit.producer_epoch,
        next_producer_epoch: NO_PRODUCER_EPOCH,
        transaction_timeout_ms: transit.timeout_ms,
        transaction_status: transit.state.id(),
        transaction_partitions: partitions,
        transaction_last_update_timestamp_ms: transit.last_update_ms,
        transaction_start_timestamp_ms: transit.start_ms,
        client_transaction_version: if flexible { transit.client_tv } else { 0 },
        ..Default::default()
    });
    let mut buf = BytesMut::with_capacity(value.encoded_len(version));
    if let Err(err) = value.encode(&mut buf, version) {
        tracing::error!("encoding a {} value: {err}", super::TRANSACTION_STATE_TOPIC);
    }
    buf.freeze()
}

/// One uncompressed batch with the record of `transactional_id` (`None`: a tombstone).
pub fn build_batch(
    transactional_id: &str,
    transit: Option<&Transit>,
    transaction_version: i16,
    now_ms: i64,
) -> Result<Bytes, RecordsError> {
    let record = NewRecord::new(
        now_ms,
        Some(encode_key(transactional_id)),
        transit.map(|t| encode_value(t, transaction_version)),
    );
    RecordBatchBuilder::new().build(&[record])
}

/// Decodes one record: the transactional id and its metadata (`None`: a tombstone).
pub fn decode(key: &Bytes, value: Option<&Bytes>) -> Result<(String, Option<TxnMetadata>), String> {
    let TransactionCoordinatorRecordKey::TransactionLog(key) =
        TransactionCoordinatorRecordKey::decode(&mut key.clone()).map_err(|e| e.to_string())?;
    let id = key.transactional_id.to_string();
    let Some(value) = value else {
        return Ok((id, None));
    };
    let (TransactionCoordinatorRecordValue::TransactionLog(v), _) =
        TransactionCoordinatorRecordValue::decode(0, &mut value.clone())
            .map_err(|e| e.to_string())?;
    let state = TxnState::from_id(v.transaction_status)
        .ok_or_else(|| format!("unknown transaction status {}", v.transaction_status))?;
    let mut partitions = BTreeSet::new();
    if state != TxnState::Empty {
        for topic in v.transaction_partitions.iter().flatten() {
            for p in &topic.partition_ids {
                partitions.insert((topic.topic.to_string(), *p));
            }
        }
    }
    let meta = TxnMetadata {
        transactional_id: id.clone(),
        producer_id: v.producer_id,
        previous_producer_id: v.previous_producer_id,
        next_producer_id: v.next_producer_id,
        producer_epoch: v.producer_epoch,
        last_producer_epoch: NO_PRODUCER_EPOCH,
        timeout_ms: v.transaction_timeout_ms,
        state,
        partitions,
        start_ms: v.transaction_start_timestamp_ms,
        last_update_ms: v.transaction_last_update_timestamp_ms,
        client_tv: v.client_transaction_version,
        pending: None,
        has_failed_epoch_fence: false,
    };
    Ok((id, Some(meta)))
}

/// The transactional ids rebuilt from one partition (the last value of a key wins, a
/// tombstone removes it), as Kafka's `loadTransactionMetadata`.
#[derive(Debug, Default)]
pub struct Replay {
    /// The ids and their metadata.
    pub transactions: BTreeMap<String, TxnMetadata>,
    /// Records applied.
    pub records: u64,
    /// Records that could not be decoded.
    pub skipped: u64,
}

impl Replay {
    /// Applies every record of `bytes` (whole batches); returns the offset after the last
    /// batch read, or `next_offset` when none could be read.
    pub fn apply_batches(&mut self, bytes: Bytes, mut next_offset: i64) -> i64 {
        for batch in RecordBatches::new(bytes) {
            let batch = match batch {
                Ok(Batch::V2(batch)) => batch,
                Ok(Batch::Legacy(message)) => {
                    next_offset = message.offset + 1;
                    self.skipped += 1;
                    continue;
                }
                Err(err) => {
                    tracing::warn!(
                        "unreadable batch in {}: {err}",
                        super::TRANSACTION_STATE_TOPIC
                    );
                    break;
                }
            };
            next_offset = batch.next_offset();
            if batch.is_control() {
                continue;
            }
            for record in batch.records() {
                let record = match record {
                    Ok(record) => record,
                    Err(err) => {
                        tracing::warn!("unreadable record: {err}");
                        self.skipped += 1;
                        continue;
                    }
                };
                let Some(key) = record.key.as_ref() else {
                    self.skipped += 1;
                    continue;
                };
                match decode(key, record.value.as_ref()) {
                    Ok((id, Some(meta))) => {
                        self.records += 1;
                        self.transactions.insert(id, meta);
                    }
                    Ok((id, None)) => {
                        self.records += 1;
                        self.transactions.remove(&id);
                    }
                    Err(err) => {
                        tracing::warn!(
                            "undecodable record in {}: {err}",
                            super::TRANSACTION_STATE_TOPIC
                        );
                        self.skipped += 1;
                    }
                }
            }
        }
        next_offset
    }

    /// Replays all of `log` (blocking file I/O).
    pub fn load(&mut self, log: &PartitionLog) {
        let mut offset = log.log_start_offset();
        let end = log.log_end_offset();
        while offset < end {
            match log.read(offset, 1 << 20, true) {
                Ok(read) if !read.records.is_empty() => {
                    let next = self.apply_batches(read.records, offset);
                    if next <= offset {
                        tracing::warn!("{}: no progress replaying at {offset}", log.name());
                        break;
                    }
                    offset = next;
                }
                Ok(_) => break,
                Err(err) => {
                    tracing::warn!("{}: replay stopped at {offset}: {err}", log.name());
                    break;
                }
            }
        }
    }
}
