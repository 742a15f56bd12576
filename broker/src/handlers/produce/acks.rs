//! Replication's part in a Produce (Kafka's `ReplicaManager.appendRecords` with
//! `Partition.appendRecordsToLeader` and `DelayedProduce`), for partitions replication
//! gave a role here; a partition without one (the single-node default) is untouched:
//!
//! * before anything is appended: a partition this broker follows is
//!   NOT_LEADER_OR_FOLLOWER; with `acks=all`, a led partition whose ISR is smaller than
//!   `min.insync.replicas` is NOT_ENOUGH_REPLICAS (19);
//! * after: with `acks=all`, each appended partition waits until its high watermark passes
//!   the append (the ISR has it), at most the request's `timeout_ms` (REQUEST_TIMED_OUT),
//!   NOT_ENOUGH_REPLICAS_AFTER_APPEND (20) if the ISR shrank below `min.insync.replicas`
//!   meanwhile. The waits run together.
//!
//! NOT_LEADER_OR_FOLLOWER answers carry the current leader and, in the response, its
//! endpoint on the request's listener (KIP-951, Produce v10+).
//!
//! The offset waited for is Kafka's `requiredOffset`: the append's last offset + 1, from
//! the answered base offset and the records the batches hold (for legacy message sets,
//! whose count is not in a header, the log end offset right after the append: at least
//! that, so the wait is never shorter).

use std::sync::Arc;
use std::time::Duration;

use gregor_protocol::error_code;
use gregor_protocol::messages::produce_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, ProduceResponse,
};

use super::Target;
use crate::broker::Broker;
use crate::replication::{LeaderPartition, Role};

/// What an `acks=all` wait needs of a partition, learnt before the append: (topic slot,
/// partition, records in the request's batches, the leadership checked).
pub(super) type Appending = Vec<(usize, i32, Option<i64>, Option<Arc<LeaderPartition>>)>;

/// The records in whole v2 batches (`None` for anything else: legacy message sets).
fn record_count(records: &[u8]) -> Option<i64> {
    let mut at = 0;
    let mut count = 0i64;
    while at < records.len() {
        let header = gregor_protocol::records::BatchHeader::decode(&records[at..])?;
        if header.magic != gregor_protocol::records::MAGIC_V2 || header.last_offset_delta < 0 {
            return None;
        }
        count += i64::from(header.last_offset_delta) + 1;
        at += usize::try_from(header.batch_length).ok()? + gregor_protocol::records::LOG_OVERHEAD;
    }
    Some(count)
}

/// Refuses, before the append, the partitions replication says may not take it now, and
/// with `acks=all` returns what the waits after it need.
pub(super) fn refuse_before_append(
    broker: &Broker,
    acks: i16,
    names: &[(String, gregor_protocol::Uuid)],
    targets: &mut [Target],
) -> Appending {
    let mut appending = Vec::new();
    for target in targets.iter_mut() {
        if target.log.is_err() {
            continue;
        }
        let name = &names[target.topic].0;
        let role = broker.replicas.role(name, target.index);
        let leading = match &role {
            Some(Role::Leader(leader)) => Some(Arc::clone(leader)),
            _ => None,
        };
        let refused = match role {
            // No role: this broker is the partition's replica, unless the metadata names
            // another leader.
            None => broker
                .image()
                .topic(name)
                .and_then(|t| t.partitions.get(&target.index))
                .filter(|p| p.leader >= 0 && p.leader != broker.node_id)
                .map(|_| error_code::NOT_LEADER_OR_FOLLOWER),
            Some(Role::Follower { .. }) => Some(error_code::NOT_LEADER_OR_FOLLOWER),
            Some(Role::Leader(leader)) if acks == -1 => leader.check_acks_all().err(),
            Some(Role::Leader(leader)) => {
                (!leader.is_leading()).then_some(error_code::NOT_LEADER_OR_FOLLOWER)
            }
        };
        if let Some(code) = refused {
            target.log = Err(code);
        } else if acks == -1 {
            let count = target.records.as_deref().and_then(record_count);
            appending.push((target.topic, target.index, count, leading));
        }
    }
    appending
}

/// With `acks=all`, waits for the ISR of every led partition appended to, and puts each
/// one's outcome in its response.
pub(super) async fn wait_for_replication(
    broker: &Broker,
    acks: i16,
    timeout_ms: i32,
    names: &[(String, gregor_protocol::Uuid)],
    appending: &Appending,
    results: &mut [(usize, PartitionProduceResponse)],
) {
    if acks != -1 {
        return;
    }
    let timeout = Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0));
    let mut waits: Vec<(usize, Arc<LeaderPartition>, i64)> = Vec::new();
    for (slot, (topic, response)) in results.iter().enumerate() {
        if response.error_code != error_code::NONE {
            continue;
        }
        let checked = appending
            .iter()
            .find(|(t, p, _, _)| t == topic && *p == response.index);
        // The leadership checked before the append, not today's role: if this broker
        // stopped leading since (a controlled shutdown moved the partition), the wait ends
        // with NOT_LEADER_OR_FOLLOWER, as Kafka's `DelayedProduce` does for a partition
        // whose leader changed, instead of answering an append the ISR may never get.
        let leader = checked
            .and_then(|(_, _, _, leader)| leader.clone())
            .or_else(|| broker.replicas.leader(&names[*topic].0, response.index));
        if let Some(leader) = leader {
            let count = checked.and_then(|(_, _, count, _)| *count);
            let required = match count {
                Some(count) if response.base_offset >= 0 => response.base_offset + count,
                _ => leader.log().log_end_offset(),
            };
            waits.push((slot, leader, required));
        }
    }
    if waits.is_empty() {
        return;
    }
    let outcomes = futures_util::future::join_all(waits.iter().map(|(_, leader, required)| {
        crate::replication::acks::wait_for_isr(leader, *required, timeout)
    }))
    .await;
    for ((slot, _, _), code) in waits.iter().zip(outcomes) {
        if code != error_code::NONE {
            results[*slot].1.error_code = code;
        }
    }
}

/// KIP-951: the current leader of each partition answered NOT_LEADER_OR_FOLLOWER (from
/// replication's role, else the metadata) and those leaders' endpoints on `listener`.
pub(super) fn add_current_leaders(broker: &Broker, listener: &str, response: &mut ProduceResponse) {
    let image = broker.image();
    let mut leaders: Vec<i32> = Vec::new();
    for topic in &mut response.responses {
        let name = if topic.name.is_empty() {
            image
                .topic_by_id(&topic.topic_id)
                .map(|t| t.name.clone())
                .unwrap_or_default()
        } else {
            topic.name.to_string()
        };
        for partition in &mut topic.partition_responses {
            if partition.error_code != error_code::NOT_LEADER_OR_FOLLOWER {
                continue;
            }
            let current = match broker.replicas.role(&name, partition.index) {
                Some(Role::Follower {
                    leader_id,
                    leader_epoch,
                }) => Some((leader_id, leader_epoch)),
                _ => image
                    .topic(&name)
                    .and_then(|t| t.partitions.get(&partition.index))
                    .filter(|p| p.leader >= 0)
                    .map(|p| (p.leader, p.leader_epoch)),
            };
            // This broker named as leader (a log closing at shutdown) tells the client
            // nothing new: the answer stays as the single-node broker gives it.
            if let Some((leader_id, leader_epoch)) = current.filter(|(id, _)| *id != broker.node_id)
            {
                partition.current_leader = LeaderIdAndEpoch {
                    leader_id,
                    leader_epoch,
                    ..Default::default()
                };
                leaders.push(leader_id);
            }
        }
    }
    leaders.sort_unstable();
    leaders.dedup();
    response.node_endpoints = leaders
        .into_iter()
        .filter_map(|id| {
            let broker = image.broker(id)?;
            let endpoint = broker
                .endpoints
                .iter()
                .find(|e| e.listener.eq_ignore_ascii_case(listener))?;
            Some(NodeEndpoint {
                node_id: id,
                host: endpoint.host.as_str().into(),
                port: i32::from(endpoint.port),
                rack: broker.rack.as_deref().map(Into::into),
                ..Default::default()
            })
        })
        .collect();
}
