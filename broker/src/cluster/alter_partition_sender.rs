//! The leader's ISR changes sent to the active controller, as Kafka's
//! `DefaultAlterPartitionManager`: the changes the [`ReplicaManager`] proposes
//! ([`IsrChangeRequest`]s on its channel) are batched into one AlterPartition request (v3,
//! topic ids, each ISR member with its broker epoch) at a time, grouped by topic id; the
//! next batch goes once the answer to the previous one has come. Each change is answered
//! with the partition as the controller committed it, or its error code.
//!
//! Kafka refuses a second change for a partition while one is waiting
//! (`OperationNotAttemptedException`): so does this sender, with OPERATION_NOT_ATTEMPTED.
//! A top-level error, or no answer from any controller in time, answers every change of
//! the batch with that error (REQUEST_TIMED_OUT for no answer); the leader proposes again
//! on its next ISR check.
//!
//! [`ReplicaManager`]: crate::replication::ReplicaManager

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gregor_protocol::Uuid;
use gregor_protocol::error_code;
use gregor_protocol::messages::alter_partition_request::{
    AlterPartitionRequest, BrokerState, PartitionData, TopicData,
};
use gregor_protocol::messages::alter_partition_response::AlterPartitionResponse;
use tokio::sync::watch;

use super::controller_channel::ControllerChannel;
use crate::replication::alter_partition::{AlterPartitionReceiver, CommittedIsr, IsrChangeRequest};

/// How long one batch may wait for the active controller.
const BATCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the request for `batch`, whose changes are by (topic id, partition); the
/// request-level broker epoch is `broker_epoch`.
pub fn build_request(
    broker_id: i32,
    broker_epoch: i64,
    batch: &BTreeMap<(Uuid, i32), IsrChangeRequest>,
) -> AlterPartitionRequest {
    let mut topics: Vec<TopicData> = Vec::new();
    for ((topic_id, _), item) in batch {
        let change = &item.change;
        let partition = PartitionData {
            partition_index: change.partition,
            leader_epoch: change.leader_epoch,
            new_isr_with_epochs: change
                .new_isr_with_epochs
                .iter()
                .map(|(id, epoch)| BrokerState {
                    broker_id: *id,
                    broker_epoch: *epoch,
                    ..Default::default()
                })
                .collect(),
            leader_recovery_state: change.leader_recovery_state,
            partition_epoch: change.partition_epoch,
            ..Default::default()
        };
        match topics.last_mut() {
            Some(last) if last.topic_id == *topic_id => last.partitions.push(partition),
            _ => topics.push(TopicData {
                topic_id: *topic_id,
                partitions: vec![partition],
                ..Default::default()
            }),
        }
    }
    AlterPartitionRequest {
        broker_id,
        broker_epoch,
        topics,
        ..Default::default()
    }
}

/// Answers every change of `batch` from `response` (a change the response does not name
/// gets UNKNOWN_TOPIC_OR_PARTITION).
pub fn answer(batch: BTreeMap<(Uuid, i32), IsrChangeRequest>, response: &AlterPartitionResponse) {
    let mut results = BTreeMap::new();
    for topic in &response.topics {
        for p in &topic.partitions {
            let result = if p.error_code == error_code::NONE {
                Ok(CommittedIsr {
                    leader_id: p.leader_id,
                    leader_epoch: p.leader_epoch,
                    isr: p.isr.clone(),
                    partition_epoch: p.partition_epoch,
                })
            } else {
                Err(p.error_code)
            };
            results.insert((topic.topic_id, p.partition_index), result);
        }
    }
    for (key, item) in batch {
        let result = if response.error_code != error_code::NONE {
            Err(response.error_code)
        } else {
            results
                .remove(&key)
                .unwrap_or(Err(error_code::UNKNOWN_TOPIC_OR_PARTITION))
        };
        let _ = item.reply.send(result);
    }
}

/// Runs the sender until the ReplicaManager's channel closes: `epoch` is the broker epoch
/// (from the lifecycle; changes wait until the broker is registered).
pub async fn run(
    broker_id: i32,
    mut changes: AlterPartitionReceiver,
    channel: Arc<ControllerChannel>,
    mut epoch: watch::Receiver<i64>,
) {
    let mut pending: BTreeMap<(Uuid, i32), IsrChangeRequest> = BTreeMap::new();
    loop {
        if pending.is_empty() {
            match changes.recv().await {
                Some(item) => add(&mut pending, item),
                None => return,
            }
        }
        // Everything already queued joins the batch.
        while let Ok(item) = changes.try_recv() {
            add(&mut pending, item);
        }
        let broker_epoch = match epoch.wait_for(|e| *e >= 0).await {
            Ok(e) => *e,
            Err(_) => return,
        };
        let batch = std::mem::take(&mut pending);
        let request = build_request(broker_id, broker_epoch, &batch);
        // While the batch is in flight, new changes queue in the channel; a second change
        // for a partition of the batch is refused when it is taken (see `add`).
        let in_flight: Vec<(Uuid, i32)> = batch.keys().copied().collect();
        let sent = channel.send(&request, 3, 3, BATCH_TIMEOUT).await;
        while let Ok(item) = changes.try_recv() {
            let key = (item.change.topic_id, item.change.partition);
            if in_flight.contains(&key) {
                let _ = item.reply.send(Err(error_code::OPERATION_NOT_ATTEMPTED));
            } else {
                add(&mut pending, item);
            }
        }
        match sent {
            Ok(response) => {
                if response.error_code != error_code::NONE {
                    tracing::warn!(
                        error = response.error_code,
                        "the controller refused an AlterPartition request"
                    );
                }
                answer(batch, &response);
            }
            Err(error) => {
                tracing::warn!(%error, "AlterPartition not answered");
                for (_, item) in batch {
                    let _ = item.reply.send(Err(error_code::REQUEST_TIMED_OUT));
                }
            }
        }
    }
}

/// Queues `item` unless a change of the same partition is queued already.
fn add(pending: &mut BTreeMap<(Uuid, i32), IsrChangeRequest>, item: IsrChangeRequest) {
    let key = (item.change.topic_id, item.change.partition);
    match pending.entry(key) {
        std::collections::btree_map::Entry::Occupied(_) => {
            let _ = item.reply.send(Err(error_code::OPERATION_NOT_ATTEMPTED));
        }
        std::collections::btree_map::Entry::Vacant(slot) => {
            slot.insert(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::alter_partition::IsrChange;
    use gregor_protocol::messages::alter_partition_response as resp;

    fn change(
        topic: u8,
        partition: i32,
    ) -> (
        IsrChangeRequest,
        tokio::sync::oneshot::Receiver<Result<CommittedIsr, i16>>,
    ) {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let change = IsrChange {
            broker_id: 1,
            broker_epoch: 7,
            topic_id: Uuid::from_bytes([topic; 16]),
            topic: format!("t{topic}"),
            partition,
            leader_epoch: 3,
            new_isr_with_epochs: vec![(1, -1), (2, 9)],
            leader_recovery_state: 0,
            partition_epoch: 4,
        };
        (IsrChangeRequest { change, reply }, rx)
    }

    #[test]
    fn a_batch_groups_by_topic_and_each_change_gets_its_answer() {
        let mut batch = BTreeMap::new();
        let (a, mut ra) = change(1, 0);
        let (b, mut rb) = change(1, 1);
        let (c, mut rc) = change(2, 0);
        add(&mut batch, a);
        add(&mut batch, b);
        add(&mut batch, c);
        let (dup, mut rdup) = change(1, 0);
        add(&mut batch, dup);
        assert_eq!(
            rdup.try_recv(),
            Ok(Err(error_code::OPERATION_NOT_ATTEMPTED))
        );
        let request = build_request(1, 7, &batch);
        assert_eq!(request.broker_epoch, 7);
        assert_eq!(request.topics.len(), 2);
        assert_eq!(request.topics[0].partitions.len(), 2);
        assert_eq!(
            request.topics[0].partitions[0].new_isr_with_epochs[1].broker_epoch,
            9
        );
        let response = AlterPartitionResponse {
            topics: vec![resp::TopicData {
                topic_id: Uuid::from_bytes([1; 16]),
                partitions: vec![
                    resp::PartitionData {
                        partition_index: 0,
                        leader_id: 1,
                        leader_epoch: 3,
                        isr: vec![1, 2],
                        partition_epoch: 5,
                        ..Default::default()
                    },
                    resp::PartitionData {
                        partition_index: 1,
                        error_code: error_code::FENCED_LEADER_EPOCH,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        answer(batch, &response);
        assert_eq!(
            ra.try_recv(),
            Ok(Ok(CommittedIsr {
                leader_id: 1,
                leader_epoch: 3,
                isr: vec![1, 2],
                partition_epoch: 5
            }))
        );
        assert_eq!(rb.try_recv(), Ok(Err(error_code::FENCED_LEADER_EPOCH)));
        assert_eq!(
            rc.try_recv(),
            Ok(Err(error_code::UNKNOWN_TOPIC_OR_PARTITION))
        );
    }
}
