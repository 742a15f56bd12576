//! DescribeTopicPartitions (KIP-966): topics sorted by name, partitions in index order, at
//! most `response_partition_limit` partitions per response, and a cursor to continue from.
//!
//! Authorization as Kafka's `DescribeTopicPartitionsRequestHandler`: topics without
//! DESCRIBE are left out before paging; when topics are named, each of those is answered
//! after the others with `TOPIC_AUTHORIZATION_FAILED` and the zero topic id (its existence
//! not disclosed). Every other topic carries the principal's authorized operations on it.

use gregor_protocol::Uuid;
use gregor_protocol::VersionRange;
use gregor_protocol::messages::describe_topic_partitions_request::DescribeTopicPartitionsRequest;
use gregor_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponse, DescribeTopicPartitionsResponsePartition,
    DescribeTopicPartitionsResponseTopic,
};

use super::RequestContext;
use super::metadata::{TOPIC_OPERATIONS, unknown_name_error};
use crate::cluster::{MetadataImage, TopicImage};
use gregor_protocol::error_code;

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
    let describe_all = request.topics.is_empty();

    // The names to describe, sorted and unique.
    let mut names: Vec<String> = if describe_all {
        image.topics().map(|t| t.name.clone()).collect()
    } else {
        request.topics.iter().map(|t| t.name.to_string()).collect()
    };
    names.sort();
    names.dedup();

    // A cursor must point into the requested topics, at a partition index >= 0.
    let mut start_partition = 0;
    if let Some(cursor) = &request.cursor {
        let listed = describe_all || names.iter().any(|n| *n == *cursor.topic_name);
        if !listed || cursor.partition_index < 0 {
            return invalid_request(&names);
        }
        names.retain(|name| **name >= *cursor.topic_name);
        start_partition = cursor.partition_index;
    }
    let cursor_topic = request.cursor.as_ref().map(|c| c.topic_name.to_string());
    let checker = super::authorize::Checker::new(ctx);
    let (names, unauthorized): (Vec<String>, Vec<String>) = names
        .into_iter()
        .partition(|name| checker.topic(crate::authorizer::AclOperation::Describe, name));

    let mut remaining = limit;
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in &names {
        if remaining == 0 {
            // The next page starts at this topic, whether or not it exists.
            next_cursor = Some(cursor(name, 0));
            break;
        }
        let Some(topic) = image.topic(name) else {
            // Listing everything only names existing topics; named ones get an error.
            if !describe_all {
                topics.push(error_topic(name));
            }
            continue;
        };
        let start = if cursor_topic.as_deref() == Some(name.as_str()) {
            start_partition
        } else {
            0
        };
        let (response, next_partition) =
            describe(&ctx.broker, &image, topic, start, &mut remaining);
        topics.push(response);
        if let Some(partition) = next_partition {
            next_cursor = Some(cursor(name, partition));
            break;
        }
    }
    for topic in &mut topics {
        let name = topic.name.as_deref().unwrap_or_default();
        topic.topic_authorized_operations =
            checker.operations(crate::authorizer::ResourceType::Topic, name);
    }
    if !describe_all {
        topics.extend(
            unauthorized
                .into_iter()
                .map(|name| DescribeTopicPartitionsResponseTopic {
                    error_code: error_code::TOPIC_AUTHORIZATION_FAILED,
                    name: Some(name.into()),
                    topic_id: Uuid::nil(),
                    is_internal: false,
                    ..Default::default()
                }),
        );
    }
    DescribeTopicPartitionsResponse {
        throttle_time_ms: 0,
        topics,
        next_cursor,
        ..Default::default()
    }
}

/// Every requested topic answered with INVALID_REQUEST (Kafka's error response).
fn invalid_request(names: &[String]) -> DescribeTopicPartitionsResponse {
    let topics = names
        .iter()
        .map(|name| DescribeTopicPartitionsResponseTopic {
            error_code: error_code::INVALID_REQUEST,
            name: Some(name.as_str().into()),
            ..Default::default()
        })
        .collect();
    DescribeTopicPartitionsResponse {
        topics,
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

/// UNKNOWN_TOPIC_OR_PARTITION (or INVALID_TOPIC_EXCEPTION for an illegal name) with the
/// all-zero topic id.
fn error_topic(name: &str) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic {
        error_code: unknown_name_error(name),
        name: Some(name.into()),
        topic_id: Uuid::nil(),
        is_internal: crate::topic_names::is_internal(name),
        topic_authorized_operations: TOPIC_OPERATIONS,
        ..Default::default()
    }
}

/// Describes the partitions of `topic` from index `start`, taking from `remaining`.
/// Returns the next partition index when the limit cut the topic short.
fn describe(
    broker: &crate::broker::Broker,
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
        let state = super::metadata::partition_state(broker, image, &topic.name, *index, p);
        partitions.push(DescribeTopicPartitionsResponsePartition {
            error_code: state.error_code,
            partition_index: *index,
            leader_id: state.leader,
            leader_epoch: p.leader_epoch,
            replica_nodes: p.replicas.clone(),
            isr_nodes: p.isr.clone(),
            eligible_leader_replicas: Some(p.eligible_leader_replicas.clone()),
            last_known_elr: Some(p.last_known_elr.clone()),
            offline_replicas: state.offline,
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
