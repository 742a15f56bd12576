//! OffsetCommit v0-v10: topics by name (by id from v10); partitions of unknown topics get
//! `UNKNOWN_TOPIC_OR_PARTITION` (`UNKNOWN_TOPIC_ID`) as Kafka checks them against the
//! metadata before the coordinator sees the request, the rest are committed to the group
//! (generation checked) and written to `__consumer_offsets`.
//!
//! The versions Kafka 4 removed, served as Kafka 3.9 did: v1 is v2 with a per-partition
//! `commit_timestamp` stored as the commit time (-1: the broker's clock), so offset
//! expiration counts from it; it has no retention time, so no explicit expire timestamp.
//! v0 commits went to ZooKeeper in Kafka 3.9 (`KafkaApis.commitOffsetsToZookeeper`); a
//! KRaft broker, like this one, has none and refused them: once a partition passes the
//! metadata checks, the whole request is answered with `UNSUPPORTED_VERSION` for every
//! partition (the error response of `requireZkOrThrow`'s exception).

use gregor_protocol::messages::offset_commit_request::OffsetCommitRequest;
use gregor_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use gregor_protocol::{Uuid, VersionRange};

use super::RequestContext;
use crate::authorizer::AclOperation;
use crate::groups::{CommitParams, CommitPartition};
use gregor_protocol::error_code;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 10 };

/// A request topic: its name, id, and each partition's error (`None`: being committed).
type TopicResult = (String, Uuid, Vec<(i32, Option<i16>)>);

/// Answers an OffsetCommit request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let image = ctx.broker.image();
    let use_ids = version >= 10;
    // KafkaApis.handleOffsetCommitRequest: READ on the group (every partition gets
    // GROUP_AUTHORIZATION_FAILED), then READ on each topic (before existence).
    let checker = super::authorize::Checker::new(ctx);
    let group_error = checker.group_error(AclOperation::Read, &request.group_id);
    let mut topics: Vec<TopicResult> = Vec::new();
    let mut commits: Vec<(String, Vec<CommitPartition>)> = Vec::new();
    let mut slots: Vec<(usize, Vec<usize>)> = Vec::new();
    for topic in &request.topics {
        let name = if use_ids {
            image.topic_by_id(&topic.topic_id).map(|t| t.name.clone())
        } else {
            Some(topic.name.to_string())
        };
        let found = name.as_deref().and_then(|n| image.topic(n));
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        let mut valid = Vec::new();
        let mut positions = Vec::new();
        for (i, p) in topic.partitions.iter().enumerate() {
            let error = match (&name, found) {
                _ if group_error.is_some() => group_error,
                (Some(n), _) if !checker.topic(AclOperation::Read, n) => {
                    Some(error_code::TOPIC_AUTHORIZATION_FAILED)
                }
                (None, _) => Some(error_code::UNKNOWN_TOPIC_ID),
                (Some(_), None) => Some(error_code::UNKNOWN_TOPIC_OR_PARTITION),
                (Some(_), Some(t)) if t.partition(p.partition_index).is_none() => {
                    Some(error_code::UNKNOWN_TOPIC_OR_PARTITION)
                }
                _ => None,
            };
            if error.is_none() {
                positions.push(i);
                valid.push(CommitPartition {
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_deref().map(str::to_string),
                    commit_timestamp_ms: if version == 1 { p.commit_timestamp } else { -1 },
                });
            }
            partitions.push((p.partition_index, error));
        }
        if !valid.is_empty() {
            slots.push((topics.len(), positions));
            commits.push((name.clone().unwrap_or_default(), valid));
        }
        topics.push((
            name.unwrap_or_else(|| topic.name.to_string()),
            topic.topic_id,
            partitions,
        ));
    }
    if version == 0 && !commits.is_empty() {
        // Kafka 3.9 in KRaft mode: no ZooKeeper to store a v0 commit in.
        for (_, _, partitions) in &mut topics {
            for (_, error) in partitions.iter_mut() {
                *error = Some(error_code::UNSUPPORTED_VERSION);
            }
        }
    } else if !commits.is_empty() {
        let codes = ctx
            .broker
            .groups
            .commit_offsets(CommitParams {
                group_id: request.group_id.to_string(),
                generation_id: request.generation_id_or_member_epoch,
                member_id: request.member_id.to_string(),
                group_instance_id: request.group_instance_id.as_deref().map(str::to_string),
                retention_time_ms: if version <= 4 {
                    request.retention_time_ms
                } else {
                    -1
                },
                version,
                topics: commits,
            })
            .await;
        for ((topic, positions), codes) in slots.into_iter().zip(codes) {
            for (position, code) in positions.into_iter().zip(codes) {
                topics[topic].2[position].1 = Some(code);
            }
        }
    }
    OffsetCommitResponse {
        topics: topics
            .into_iter()
            .map(|(name, id, partitions)| OffsetCommitResponseTopic {
                name: if use_ids {
                    Default::default()
                } else {
                    name.into()
                },
                topic_id: if use_ids { id } else { Uuid::nil() },
                partitions: partitions
                    .into_iter()
                    .map(|(partition_index, error)| OffsetCommitResponsePartition {
                        partition_index,
                        error_code: error.unwrap_or(error_code::NONE),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
