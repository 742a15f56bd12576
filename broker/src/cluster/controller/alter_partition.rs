//! AlterPartition: a partition leader asks the controller to change the partition's ISR
//! (or its leader recovery state), as Kafka's `ReplicationControlManager.alterPartition`
//! decides it. Callable in process ([`Controller::alter_partition`]) by the replication
//! code of this node, and served on the controller listener for other brokers.
//!
//! Checks per partition, in Kafka's order: the partition exists
//! (`UNKNOWN_TOPIC_OR_PARTITION`; an unknown topic id is `UNKNOWN_TOPIC_ID` for all its
//! partitions); a leader or partition epoch *newer* than the controller's means the sender
//! talks to a stale controller (`NOT_CONTROLLER`); an older leader epoch is
//! `FENCED_LEADER_EPOCH`; only the leader may ask (`INVALID_REQUEST`); an older partition
//! epoch is `INVALID_UPDATE_VERSION`; the new ISR must be replicas without duplicates and
//! include the leader, a RECOVERING leader must be alone in it, RECOVERED cannot go back to
//! RECOVERING (`INVALID_REQUEST`); every new ISR member must be registered, unfenced, not
//! shutting down, at the broker epoch given (`INELIGIBLE_REPLICA`). The sender's broker
//! epoch must be current (`STALE_BROKER_EPOCH` for the whole request). Accepted changes are
//! `PartitionChangeRecord`s in one batch; each partition is answered with its state after
//! the change.

use gregor_protocol::MetadataRecord;
use gregor_protocol::messages::alter_partition_request::AlterPartitionRequest;
use gregor_protocol::messages::alter_partition_response::{
    AlterPartitionResponse, PartitionData, TopicData,
};
use gregor_protocol::metadata_frame::VersionedRecord;

use super::brokers::{check_broker_epoch, unclean_enabled};
use super::partition_change::{Election, PARTITION_CHANGE_RECORD_VERSION, PartitionChangeBuilder};
use super::{Controller, ControllerError, is_active};
use crate::cluster::image::{LeaderRecoveryState, MetadataImage, NO_LEADER_CHANGE, PartitionImage};
use gregor_protocol::error_code::*;

/// The new ISR of a request partition as (broker, broker epoch): `new_isr_with_epochs`
/// (v3), else `new_isr` with epoch -1 (v2: no epoch check).
fn new_isr(
    partition: &gregor_protocol::messages::alter_partition_request::PartitionData,
) -> Vec<(i32, i64)> {
    if partition.new_isr_with_epochs.is_empty() {
        partition.new_isr.iter().map(|b| (*b, -1)).collect()
    } else {
        partition
            .new_isr_with_epochs
            .iter()
            .map(|b| (b.broker_id, b.broker_epoch))
            .collect()
    }
}

/// Kafka's `validateAlterPartitionData`; `NONE` when the change may be made.
fn validate(
    image: &MetadataImage,
    sender: i32,
    current: &PartitionImage,
    asked: &gregor_protocol::messages::alter_partition_request::PartitionData,
) -> i16 {
    if asked.leader_epoch > current.leader_epoch || asked.partition_epoch > current.partition_epoch
    {
        return NOT_CONTROLLER;
    }
    if asked.leader_epoch < current.leader_epoch {
        return FENCED_LEADER_EPOCH;
    }
    if sender != current.leader {
        return INVALID_REQUEST;
    }
    if asked.partition_epoch < current.partition_epoch {
        return INVALID_UPDATE_VERSION;
    }
    let isr = new_isr(asked);
    let ids: Vec<i32> = isr.iter().map(|(b, _)| *b).collect();
    // Kafka's `Replicas.validateIsr`: replicas only, no duplicates.
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != ids.len() || ids.iter().any(|b| !current.replicas.contains(b)) {
        return INVALID_REQUEST;
    }
    if !ids.contains(&current.leader) {
        return INVALID_REQUEST;
    }
    let Some(recovery) = LeaderRecoveryState::from_i8(asked.leader_recovery_state) else {
        return INVALID_REQUEST;
    };
    if recovery == LeaderRecoveryState::Recovering && ids.len() > 1 {
        return INVALID_REQUEST;
    }
    if current.leader_recovery_state == LeaderRecoveryState::Recovered
        && recovery == LeaderRecoveryState::Recovering
    {
        return INVALID_REQUEST;
    }
    let ineligible = isr
        .iter()
        .any(|(broker, epoch)| match image.broker(*broker) {
            None => true,
            Some(b) => b.in_controlled_shutdown || b.fenced || (*epoch != -1 && b.epoch != *epoch),
        });
    if ineligible {
        tracing::info!(
            sender,
            isr = ?ids,
            "AlterPartition refused: ineligible replicas in the new ISR"
        );
        return INELIGIBLE_REPLICA;
    }
    NONE
}

fn failed(partition: i32, code: i16) -> PartitionData {
    PartitionData {
        partition_index: partition,
        error_code: code,
        ..Default::default()
    }
}

impl Controller {
    /// Applies an AlterPartition request (see the module docs). A stale sender epoch
    /// answers the whole request with `STALE_BROKER_EPOCH`; a failed write is the error.
    pub fn alter_partition(
        &self,
        request: &AlterPartitionRequest,
    ) -> Result<AlterPartitionResponse, ControllerError> {
        let mut log = self.lock();
        log.check_active()?;
        let image = self.image();
        if let Err(error) = check_broker_epoch(&image, request.broker_id, request.broker_epoch) {
            tracing::info!(
                broker = request.broker_id,
                "AlterPartition refused: {}",
                error.message.as_deref().unwrap_or_default()
            );
            return Ok(AlterPartitionResponse {
                error_code: error.code,
                ..Default::default()
            });
        }
        let acceptable = |r: i32| is_active(&image, r);
        let mut records = Vec::new();
        let mut topics = Vec::new();
        for asked_topic in &request.topics {
            let mut answered = TopicData {
                topic_id: asked_topic.topic_id,
                partitions: Vec::new(),
                ..Default::default()
            };
            let topic = (!asked_topic.topic_id.is_nil())
                .then(|| image.topic_by_id(&asked_topic.topic_id))
                .flatten();
            let Some(topic) = topic else {
                for p in &asked_topic.partitions {
                    answered
                        .partitions
                        .push(failed(p.partition_index, UNKNOWN_TOPIC_ID));
                }
                topics.push(answered);
                continue;
            };
            let unclean = unclean_enabled(self, &image, &topic.name);
            for asked in &asked_topic.partitions {
                let index = asked.partition_index;
                let Some(current) = topic.partitions.get(&index) else {
                    answered
                        .partitions
                        .push(failed(index, UNKNOWN_TOPIC_OR_PARTITION));
                    continue;
                };
                let code = validate(&image, request.broker_id, current, asked);
                if code != NONE {
                    answered.partitions.push(failed(index, code));
                    continue;
                }
                let recovery =
                    LeaderRecoveryState::from_i8(asked.leader_recovery_state).unwrap_or_default();
                let mut builder =
                    PartitionChangeBuilder::new(current, topic.id, index, &acceptable)
                        .target_isr(new_isr(asked).into_iter().map(|(b, _)| b).collect())
                        .target_leader_recovery_state(recovery);
                if unclean {
                    builder = builder.election(Election::Unclean);
                }
                let mut after = current.clone();
                if let Some(change) = builder.build() {
                    after = match current.merge(&change) {
                        Ok(after) => after,
                        Err(_) => {
                            answered
                                .partitions
                                .push(failed(index, UNKNOWN_SERVER_ERROR));
                            continue;
                        }
                    };
                    let leader_changed =
                        change.leader != NO_LEADER_CHANGE && change.leader != request.broker_id;
                    records.push(VersionedRecord {
                        version: PARTITION_CHANGE_RECORD_VERSION,
                        record: MetadataRecord::PartitionChange(change),
                    });
                    if leader_changed {
                        // Kafka: the change also moved the leadership (a reassignment
                        // completed); the sender must learn the new leader first.
                        answered.partitions.push(failed(index, NEW_LEADER_ELECTED));
                        continue;
                    }
                }
                answered.partitions.push(PartitionData {
                    partition_index: index,
                    error_code: NONE,
                    leader_id: after.leader,
                    leader_epoch: after.leader_epoch,
                    isr: after.isr.clone(),
                    leader_recovery_state: after.leader_recovery_state.as_i8(),
                    partition_epoch: after.partition_epoch,
                    ..Default::default()
                });
            }
            topics.push(answered);
        }
        self.commit(&mut log, records)?;
        Ok(AlterPartitionResponse {
            error_code: NONE,
            topics,
            ..Default::default()
        })
    }
}
