//! DescribeTopicPartitions (KIP-966): topics sorted by name, partitions in index order, at
//! most `response_partition_limit` partitions per response, and a cursor to continue from.

use gregor_protocol::Uuid;
use gregor_protocol::VersionRange;
use gregor_protocol::messages::describe_topic_partitions_request::DescribeTopicPartitionsRequest;
use gregor_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponse, DescribeTopicPartitionsResponsePartition,
    DescribeTopicPartitionsResponseTopic,
};

use super::metadata::TOPIC_OPERATIONS;
use super::{RequestContext, error_code};
use crate::cluster::{MetadataImage, TopicImage};

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// The broker's own cap on partitions per response (Kafka's
/// `max.request.partition.size.limit` default).
pub const MAX_PARTITIONS_PER_RESPONSE: i32 = 2000;

/// Answers a DescribeTopicPartitions request.
pub fn handle(
    ctx: &RequestContext,
    version: i16,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let _ = version;
    let image = ctx.broker.image();
    let limit = request
        .response_partition_limit
        .clamp(1, MAX_PARTITIONS_PER_RESPONSE) as usize;
    let (cursor_topic, cursor_partition) = match &request.cursor {
        Some(cursor) => (
            Some(cursor.topic_name.to_string()),
            cursor.partition_index.max(0),
        ),
        None => (None, 0),
    };

    // The names to describe, sorted, from the cursor's topic on.
    let mut names: Vec<String> = if request.topics.is_empty() {
        image.topics().map(|t| t.name.clone()).collect()
    } else {
        request.topics.iter().map(|t| t.name.to_string()).collect()
    };
    names.sort();
    names.dedup();
    if let Some(first) = &cursor_topic {
        names.retain(|name| name >= first);
    }

    let mut remaining = limit;
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for (i, name) in names.iter().enumerate() {
        let Some(topic) = image.topic(name) else {
            topics.push(unknown_topic(name));
            continue;
        };
        if remaining == 0 {
            next_cursor = Some(cursor(name, 0));
            break;
        }
        let start = if cursor_topic.as_deref() == Some(name.as_str()) {
            cursor_partition
        } else {
            0
        };
        let (response, next_partition) = describe(&image, topic, start, &mut remaining);
        topics.push(response);
        if let Some(partition) = next_partition {
            next_cursor = Some(cursor(name, partition));
            break;
        }
        if remaining == 0 {
            // Continue with the next existing topic, if any.
            if let Some(next) = names[i + 1..].iter().find(|n| image.topic(n).is_some()) {
                next_cursor = Some(cursor(next, 0));
            }
            break;
        }
    }
    DescribeTopicPartitionsResponse {
        throttle_time_ms: 0,
        topics,
        next_cursor,
        ..Default::default()
    }
}

fn cursor(topic: &str, partition: i32) -> Cursor {
    Cursor {
        topic_name: topic.into(),
        partition_index: partition,
        ..Default::default()
    }
}

fn unknown_topic(name: &str) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic {
        error_code: error_code::UNKNOWN_TOPIC_OR_PARTITION,
        name: Some(name.into()),
        topic_id: Uuid::nil(),
        ..Default::default()
    }
}

/// Describes the partitions of `topic` from index `start`, taking from `remaining`.
/// Returns the next partition index when the limit cut the topic short.
fn describe(
    image: &MetadataImage,
    topic: &TopicImage,
    start: i32,
    remaining: &mut usize,
) -> (DescribeTopicPartitionsResponseTopic, Option<i32>) {
    let mut partitions = Vec::new();
    let mut next = None;
    for (index, p) in topic.partitions.range(start..) {
        if *remaining == 0 {
            next = Some(*index);
            break;
        }
        *remaining -= 1;
        partitions.push(DescribeTopicPartitionsResponsePartition {
            error_code: error_code::NONE,
            partition_index: *index,
            leader_id: p.leader,
            leader_epoch: p.leader_epoch,
            replica_nodes: p.replicas.clone(),
            isr_nodes: p.isr.clone(),
            eligible_leader_replicas: Some(p.eligible_leader_replicas.clone()),
            last_known_elr: Some(p.last_known_elr.clone()),
            offline_replicas: p
                .replicas
                .iter()
                .copied()
                .filter(|id| !image.is_broker_alive(*id))
                .collect(),
            ..Default::default()
        });
    }
    let response = DescribeTopicPartitionsResponseTopic {
        error_code: error_code::NONE,
        name: Some(topic.name.as_str().into()),
        topic_id: topic.id,
        is_internal: crate::topic_names::is_internal(&topic.name),
        partitions,
        topic_authorized_operations: TOPIC_OPERATIONS,
        ..Default::default()
    };
    (response, next)
}
