//! Transactional offset commits (TxnOffsetCommit, KIP-98; Kafka's
//! `OffsetMetadataManager.commitTransactionalOffset` and the classic
//! `GroupMetadata.pendingTransactionalOffsetCommits`).
//!
//! The offsets are written to the group's `__consumer_offsets` partition as a
//! transactional batch of the producer (producer id and epoch, sequence 0 as Kafka's
//! coordinator writes it), and kept *pending* per group and producer id: OffsetFetch does
//! not return them, and with `require_stable` (KIP-447) answers `UNSTABLE_OFFSET_COMMIT`
//! for their partitions. When the transaction's marker is written to that partition
//! ([`GroupCoordinator::on_transaction_completed`]), a commit makes them the group's
//! committed offsets and an abort drops them (Kafka's `onTransactionCompleted`). At
//! start-up the replay does the same with the markers it finds; offsets whose marker is
//! not in the log yet are pending again.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use bytes::BytesMut;
use gregor_protocol::error_code;
use gregor_protocol::error_code::*;
use gregor_protocol::records::{NewRecord, RecordBatchBuilder};

use super::group::{GroupState, OffsetAndMetadata, Record, now_ms};
use super::{GroupCoordinator, OFFSETS_TOPIC, partition_for, records};

/// Offsets of one producer's open transaction, by topic and partition.
pub type PendingOffsets = BTreeMap<(String, i32), OffsetAndMetadata>;

/// The pending transactional offsets of every group, by group and producer id.
#[derive(Debug, Default)]
pub struct PendingTxnOffsets {
    by_group: Mutex<HashMap<String, HashMap<i64, PendingOffsets>>>,
}

impl PendingTxnOffsets {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<i64, PendingOffsets>>> {
        self.by_group.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds offsets of `producer_id` to `group`'s pending ones (a later one of the same
    /// partition replaces the earlier).
    pub fn add(&self, group: &str, producer_id: i64, offsets: PendingOffsets) {
        self.lock()
            .entry(group.to_string())
            .or_default()
            .entry(producer_id)
            .or_default()
            .extend(offsets);
    }

    /// Whether any open transaction of `group` holds an offset of the partition.
    pub fn has_pending(&self, group: &str, topic: &str, partition: i32) -> bool {
        let key = (topic.to_string(), partition);
        self.lock()
            .get(group)
            .is_some_and(|by_producer| by_producer.values().any(|o| o.contains_key(&key)))
    }

    /// Takes `producer_id`'s pending offsets of the groups of `offsets_partition`
    /// (`partitions`: the partition count of `__consumer_offsets`).
    fn take(
        &self,
        offsets_partition: i32,
        partitions: i32,
        producer_id: i64,
    ) -> Vec<(String, PendingOffsets)> {
        let mut map = self.lock();
        let mut taken = Vec::new();
        map.retain(|group, by_producer| {
            if partition_for(group, partitions) == offsets_partition
                && let Some(offsets) = by_producer.remove(&producer_id)
            {
                taken.push((group.clone(), offsets));
            }
            !by_producer.is_empty()
        });
        taken
    }
}

/// A TxnOffsetCommit as the handler passes it on (topics and partitions checked).
#[derive(Clone, Debug)]
pub struct TxnCommitParams {
    /// Transactional id.
    pub transactional_id: String,
    /// Group id.
    pub group_id: String,
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Generation (-1 without group management).
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// Topics and their partitions.
    pub topics: Vec<(String, Vec<super::CommitPartition>)>,
}

impl GroupCoordinator {
    /// TxnOffsetCommit: each partition's error, in the order of `params.topics`.
    pub async fn commit_transactional_offsets(&self, params: TxnCommitParams) -> Vec<Vec<i16>> {
        let all = |code: i16| -> Vec<Vec<i16>> {
            params
                .topics
                .iter()
                .map(|(_, partitions)| vec![code; partitions.len()])
                .collect()
        };
        if params.group_id.is_empty() {
            return all(INVALID_GROUP_ID);
        }
        if let Some(code) = self.coordinator_error(&params.group_id) {
            return all(code);
        }
        if let Err(code) = self.ensure_offsets_topic().await {
            return all(code);
        }
        let cell = match self.get(&params.group_id) {
            Some(cell) => cell,
            None if params.generation_id < 0 => self.get_or_create(&params.group_id).0,
            None => return all(ILLEGAL_GENERATION),
        };
        let group = cell.state.lock().await;
        // Kafka's `validateOffsetCommit` with `isTransactional`: a commit without member
        // or generation is accepted whatever the group's state.
        let anonymous = params.generation_id < 0
            && params.member_id.is_empty()
            && params.group_instance_id.is_none();
        let valid = if let Some(consumer) = group.consumer.as_deref() {
            consumer.validate_txn_offset_commit(&params.member_id, params.generation_id)
        } else if group.state() == GroupState::Dead {
            Err(COORDINATOR_NOT_AVAILABLE)
        } else if anonymous {
            if group.state() == GroupState::CompletingRebalance {
                Err(REBALANCE_IN_PROGRESS)
            } else {
                Ok(())
            }
        } else {
            group.validate_offset_commit(
                &params.member_id,
                params.group_instance_id.as_deref(),
                params.generation_id,
            )
        };
        if let Err(code) = valid {
            return all(code);
        }
        let now = now_ms();
        let (mut codes, offsets) = super::offsets_to_commit(
            &params.topics,
            self.settings.offset_metadata_max_bytes,
            now,
            None,
        );
        let mut pending = PendingOffsets::new();
        let mut records_out = Vec::with_capacity(offsets.len());
        for (topic, partition, offset) in offsets {
            records_out.push(Record::Offset {
                topic: topic.clone(),
                partition,
                value: Some(offset.clone()),
            });
            pending.insert((topic, partition), offset);
        }
        if records_out.is_empty() {
            return codes;
        }
        match self
            .append_transactional(
                &params.group_id,
                &records_out,
                params.producer_id,
                params.producer_epoch,
            )
            .await
        {
            Ok(()) => {
                tracing::debug!(
                    group = %params.group_id,
                    transactional_id = %params.transactional_id,
                    "{} transactional offsets pending",
                    pending.len()
                );
                self.txn_offsets
                    .add(&params.group_id, params.producer_id, pending);
            }
            Err(code) => {
                let error = super::group::offset_commit_append_error(code);
                for code in codes.iter_mut().flatten() {
                    if *code == error_code::NONE {
                        *code = error;
                    }
                }
            }
        }
        drop(group);
        codes
    }

    /// Whether `group` has a transactional offset of the partition not yet committed or
    /// aborted (OffsetFetch `require_stable`).
    pub fn has_pending_txn_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.txn_offsets.has_pending(group, topic, partition)
    }

    /// The marker of `producer_id`'s transaction was written to `offsets_partition` of
    /// `__consumer_offsets`: its pending offsets there become committed (`commit`) or are
    /// dropped (Kafka's `onTransactionCompleted`).
    pub async fn on_transaction_completed(
        &self,
        offsets_partition: i32,
        producer_id: i64,
        commit: bool,
    ) {
        let taken = self
            .txn_offsets
            .take(offsets_partition, self.partition_count(), producer_id);
        if !commit {
            return;
        }
        for (group_id, offsets) in taken {
            let cell = self.get_or_create(&group_id).0;
            let mut group = cell.state.lock().await;
            for ((topic, partition), offset) in offsets {
                group
                    .offsets
                    .entry(topic)
                    .or_default()
                    .insert(partition, offset);
            }
        }
    }

    /// Appends `records` of `group_id` as one transactional batch of the producer. The
    /// batch goes in as it is built (Kafka's coordinator writes skip the producer's
    /// sequence checks, which a coordinator-made batch with sequence 0 would fail).
    async fn append_transactional(
        &self,
        group_id: &str,
        records: &[Record],
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<(), i16> {
        let broker = self.broker().ok_or(UNKNOWN_TOPIC_OR_PARTITION)?;
        let (log, partition, leader_epoch) =
            broker.coordinator_partition(OFFSETS_TOPIC, group_id)?;
        // With `acks=all` as the group's other writes (Kafka's `CoordinatorRuntime`): the
        // pending offsets survive the loss of this broker, as their marker will.
        use crate::cluster::coordinator_partitions as replicated;
        replicated::check_write(&broker.replicas, OFFSETS_TOPIC, partition)?;
        let now = now_ms();
        let encoded: Vec<NewRecord> = records
            .iter()
            .map(|record| {
                let (key, value) = records::encode(group_id, record);
                NewRecord::new(now, Some(key), value)
            })
            .collect();
        let batch = RecordBatchBuilder::new()
            .producer(producer_id, producer_epoch)
            .base_sequence(0)
            .transactional(true)
            .partition_leader_epoch(leader_epoch)
            .build(&encoded)
            .map_err(|err| {
                tracing::error!(group = %group_id, "cannot encode transactional offsets: {err}");
                UNKNOWN_SERVER_ERROR
            })?;
        let task = tokio::task::spawn_blocking(move || {
            let mut buf = BytesMut::from(&batch[..]);
            log.append_batch(&mut buf)
                .map(|info| info.last_offset + 1)
                .map_err(|err| err.coordinator_write_code(&log.name()))
        });
        let end = task.await.unwrap_or(Err(UNKNOWN_SERVER_ERROR))?;
        replicated::wait_replicated(
            &broker.replicas,
            OFFSETS_TOPIC,
            partition,
            end,
            replicated::OFFSETS_WRITE_TIMEOUT,
        )
        .await
    }
}
