//! OffsetForLeaderEpoch v0-v4 (KIP-101, KIP-320): the end offset of a leader epoch of each
//! partition, from its leader epoch cache (see [`crate::storage::leader_epoch`]), as
//! Kafka's `ReplicaManager.lastOffsetForLeaderEpoch` answers it. Consumers send it to check,
//! after a leader change or restart, that their position was not truncated away.
//!
//! Per partition: a topic or partition missing from the metadata is
//! `UNKNOWN_TOPIC_OR_PARTITION`, one without a log here `KAFKA_STORAGE_ERROR` (offline); a
//! `current_leader_epoch` other than -1 is checked against the partition's leader epoch
//! (`FENCED_LEADER_EPOCH` below it, `UNKNOWN_LEADER_EPOCH` above); otherwise the answer is
//! the largest epoch not above the requested one and where it ends, `-1`/`-1` when the
//! cache knows none (Kafka answers that without an error). `replica_id` (v3+) changes
//! nothing: Kafka answers followers and consumers from the leader alike. A partition
//! replication made this broker follow is NOT_LEADER_OR_FOLLOWER; one it leads is checked
//! against the epoch it leads in. v0 and v1 (served again as Kafka 3.9 did; Kafka 4 removed them)
//! are answered alike; a v0 response has no `leader_epoch`, so the encoder drops it (the
//! field is ignorable).
//!
//! Authorization (Kafka's `handleOffsetForLeaderEpochRequest`): CLUSTER_ACTION on the
//! cluster (a follower) allows every topic, else each topic needs DESCRIBE (a consumer,
//! KIP-320); the partitions of the others are `TOPIC_AUTHORIZATION_FAILED`, listed after
//! the authorized topics.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderEpochRequest;
use gregor_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};

use super::RequestContext;

/// Versions served (Kafka 3.9's range; Kafka 4 removed v0 and v1).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

/// Answers an OffsetForLeaderEpoch request.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    use crate::authorizer::AclOperation;
    let checker = super::authorize::Checker::new(ctx);
    let mut request = request;
    let mut unauthorized = Vec::new();
    if !checker.cluster(AclOperation::ClusterAction) {
        let (allowed, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topics)
            .into_iter()
            .partition(|t| checker.topic(AclOperation::Describe, &t.topic));
        request.topics = allowed;
        unauthorized = denied
            .into_iter()
            .map(|topic| OffsetForLeaderTopicResult {
                topic: topic.topic,
                partitions: topic
                    .partitions
                    .iter()
                    .map(|p| EpochEndOffset {
                        error_code: error_code::TOPIC_AUTHORIZATION_FAILED,
                        partition: p.partition,
                        leader_epoch: -1,
                        end_offset: -1,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
    }
    let broker = ctx.broker.clone();
    // A lookup may rewrite a `leader-epoch-checkpoint` (blocking file I/O).
    let topics = tokio::task::spawn_blocking(move || {
        let image = broker.image();
        request
            .topics
            .into_iter()
            .map(|topic| {
                let name = topic.topic.to_string();
                let partitions = topic
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let error = |code: i16| EpochEndOffset {
                            error_code: code,
                            partition: p.partition,
                            leader_epoch: -1,
                            end_offset: -1,
                            ..Default::default()
                        };
                        let Some(partition) =
                            image.topic(&name).and_then(|t| t.partition(p.partition))
                        else {
                            return error(error_code::UNKNOWN_TOPIC_OR_PARTITION);
                        };
                        let Some(log) = broker.logs.get(&name, p.partition) else {
                            return error(error_code::KAFKA_STORAGE_ERROR);
                        };
                        // Kafka's `Partition.checkCurrentLeaderEpoch`, against the epoch
                        // replication leads in when it gave the partition a role (only
                        // the leader answers: `fetchOnlyFromLeader`).
                        let current = match broker.replicas.role(&name, p.partition) {
                            None => partition.leader_epoch,
                            Some(crate::replication::Role::Leader(leader)) => leader.leader_epoch(),
                            Some(crate::replication::Role::Follower { .. }) => {
                                return error(error_code::NOT_LEADER_OR_FOLLOWER);
                            }
                        };
                        match p.current_leader_epoch {
                            -1 => {}
                            e if e < current => return error(error_code::FENCED_LEADER_EPOCH),
                            e if e > current => return error(error_code::UNKNOWN_LEADER_EPOCH),
                            _ => {}
                        }
                        let (leader_epoch, end_offset) =
                            log.end_offset_for_epoch(p.leader_epoch, current);
                        EpochEndOffset {
                            error_code: error_code::NONE,
                            partition: p.partition,
                            leader_epoch,
                            end_offset,
                            ..Default::default()
                        }
                    })
                    .collect();
                OffsetForLeaderTopicResult {
                    topic: name.as_str().into(),
                    partitions,
                    ..Default::default()
                }
            })
            .collect()
    })
    .await
    .unwrap_or_else(|err| {
        tracing::error!("offset for leader epoch task failed: {err}");
        Vec::new()
    });
    let mut topics = topics;
    topics.extend(unauthorized);
    OffsetForLeaderEpochResponse {
        throttle_time_ms: 0,
        topics,
        ..Default::default()
    }
}
