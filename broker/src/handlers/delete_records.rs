//! DeleteRecords: raises the log start offset of partitions, as Kafka's
//! `handleDeleteRecordsRequest` and `Partition.deleteRecordsOnLeader` do.
//!
//! Per partition: `UNKNOWN_TOPIC_OR_PARTITION` when the metadata has no such partition;
//! `INVALID_TOPIC_EXCEPTION` for the internal topics; `POLICY_VIOLATION` when the topic's
//! `cleanup.policy` is `compact` without `delete`; `OFFSET_OUT_OF_RANGE` for an offset above
//! the high watermark or negative other than -1 (the high watermark). Otherwise the log start
//! offset becomes the offset (if higher; segments wholly below it are deleted and the new
//! value is checkpointed) and the answer's low watermark is the log start offset. Errors
//! have a low watermark of -1. A partition named twice is answered once, for its last
//! offset (Kafka collects the request into a map).

use std::collections::HashMap;

use gregor_protocol::VersionRange;
use gregor_protocol::messages::delete_records_request::DeleteRecordsRequest;
use gregor_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
};

use super::RequestContext;
use crate::broker::Broker;
use crate::storage::StorageError;
use crate::topic_names;
use gregor_protocol::error_code;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// Kafka's `DeleteRecordsResponse.INVALID_LOW_WATERMARK`.
const INVALID_LOW_WATERMARK: i64 = -1;

/// Answers a DeleteRecords request.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    // (topic, [(partition, offset)]) in order of first appearance, the last offset winning.
    let mut topics: Vec<(String, Vec<(i32, i64)>)> = Vec::new();
    let mut index: HashMap<(String, i32), (usize, usize)> = HashMap::new();
    for topic in request.topics {
        let name = topic.name.to_string();
        for partition in topic.partitions {
            let key = (name.clone(), partition.partition_index);
            if let Some(&(t, p)) = index.get(&key) {
                topics[t].1[p].1 = partition.offset;
                continue;
            }
            let t = match topics.iter().position(|(n, _)| *n == name) {
                Some(t) => t,
                None => {
                    topics.push((name.clone(), Vec::new()));
                    topics.len() - 1
                }
            };
            topics[t]
                .1
                .push((partition.partition_index, partition.offset));
            index.insert(key, (t, topics[t].1.len() - 1));
        }
    }
    let broker = ctx.broker.clone();
    // KafkaApis.handleDeleteRecordsRequest: DELETE on each topic.
    let checker = super::authorize::Checker::new(ctx);
    let denied: std::collections::HashSet<String> = topics
        .iter()
        .filter(|(name, _)| !checker.topic(crate::authorizer::AclOperation::Delete, name))
        .map(|(name, _)| name.clone())
        .collect();
    let results = tokio::task::spawn_blocking(move || {
        topics
            .into_iter()
            .map(|(name, partitions)| DeleteRecordsTopicResult {
                partitions: partitions
                    .into_iter()
                    .map(|(partition, offset)| {
                        if denied.contains(&name) {
                            failed(partition, error_code::TOPIC_AUTHORIZATION_FAILED)
                        } else {
                            delete(&broker, &name, partition, offset)
                        }
                    })
                    .collect(),
                name: name.into(),
                ..Default::default()
            })
            .collect()
    })
    .await
    .unwrap_or_else(|err| {
        tracing::error!("delete records task failed: {err}");
        Vec::new()
    });
    DeleteRecordsResponse {
        throttle_time_ms: 0,
        topics: results,
        ..Default::default()
    }
}

/// Deletes the records of one partition below `offset` (blocking file I/O).
fn delete(
    broker: &Broker,
    topic: &str,
    partition: i32,
    offset: i64,
) -> DeleteRecordsPartitionResult {
    let image = broker.image();
    let known = image
        .topic(topic)
        .is_some_and(|t| t.partitions.contains_key(&partition));
    if !known {
        return failed(partition, error_code::UNKNOWN_TOPIC_OR_PARTITION);
    }
    if topic_names::is_internal(topic) {
        tracing::info!("refused to delete records of internal topic {topic}");
        return failed(partition, error_code::INVALID_TOPIC_EXCEPTION);
    }
    let Some(log) = broker.logs.get(topic, partition) else {
        // In the metadata but not hosted here.
        return failed(partition, error_code::NOT_LEADER_OR_FOLLOWER);
    };
    let policy = log.config().cleanup_policy;
    if policy.compact && !policy.delete {
        return failed(partition, error_code::POLICY_VIOLATION);
    }
    match log.delete_records_before(offset) {
        Ok(log_start_offset) => DeleteRecordsPartitionResult {
            partition_index: partition,
            low_watermark: log_start_offset,
            error_code: error_code::NONE,
            ..Default::default()
        },
        Err(StorageError::OffsetOutOfRange { .. }) => {
            failed(partition, error_code::OFFSET_OUT_OF_RANGE)
        }
        Err(StorageError::Closed { .. }) => failed(partition, error_code::NOT_LEADER_OR_FOLLOWER),
        Err(StorageError::Deleted { .. }) => {
            failed(partition, error_code::UNKNOWN_TOPIC_OR_PARTITION)
        }
        Err(err) => {
            tracing::error!("deleting records of {topic}-{partition}: {err}");
            failed(partition, error_code::KAFKA_STORAGE_ERROR)
        }
    }
}

fn failed(partition: i32, code: i16) -> DeleteRecordsPartitionResult {
    DeleteRecordsPartitionResult {
        partition_index: partition,
        low_watermark: INVALID_LOW_WATERMARK,
        error_code: code,
        ..Default::default()
    }
}
