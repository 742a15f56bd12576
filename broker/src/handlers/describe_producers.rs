//! DescribeProducers (KIP-664): the idempotent producers a partition's state holds, as
//! Kafka's `ReplicaManager.activeProducerState` answers.
//!
//! Per partition: `TOPIC_AUTHORIZATION_FAILED` without READ on the topic (Kafka's
//! `handleDescribeProducersRequest`, before it looks the topic up), `UNKNOWN_TOPIC_OR_PARTITION` when the metadata has no such partition,
//! `KAFKA_STORAGE_ERROR` when it has one without a log here (offline, as Produce answers).
//! Otherwise each producer with its epoch, last sequence, last batch timestamp, the epoch
//! of the coordinator that wrote its last transaction marker (-1 if none) and the first
//! offset of its ongoing transaction (-1 outside one).

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::describe_producers_request::DescribeProducersRequest;
use gregor_protocol::messages::describe_producers_response::{
    DescribeProducersResponse, PartitionResponse, ProducerState, TopicResponse,
};

use super::RequestContext;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// Answers a DescribeProducers request.
pub fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let image = ctx.broker.image();
    let checker = super::authorize::Checker::new(ctx);
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let denied = checker.topic_error(crate::authorizer::AclOperation::Read, &topic.name);
            let known = image.topic(&topic.name);
            let partitions = topic
                .partition_indexes
                .into_iter()
                .map(|index| {
                    let mut response = PartitionResponse {
                        partition_index: index,
                        ..Default::default()
                    };
                    if let Some(code) = denied {
                        response.error_code = code;
                        return response;
                    }
                    if !known.is_some_and(|t| t.partitions.contains_key(&index)) {
                        response.error_code = error_code::UNKNOWN_TOPIC_OR_PARTITION;
                        return response;
                    }
                    let Some(log) = ctx.broker.logs.get(&topic.name, index) else {
                        response.error_code = error_code::KAFKA_STORAGE_ERROR;
                        return response;
                    };
                    response.active_producers = log
                        .producer_states()
                        .into_iter()
                        .map(|(producer_id, entry)| ProducerState {
                            producer_id,
                            producer_epoch: i32::from(entry.epoch()),
                            last_sequence: entry.last_seq(),
                            last_timestamp: entry.last_timestamp(),
                            coordinator_epoch: entry.coordinator_epoch(),
                            current_txn_start_offset: entry
                                .current_txn_first_offset()
                                .unwrap_or(-1),
                            ..Default::default()
                        })
                        .collect();
                    response
                })
                .collect();
            TopicResponse {
                name: topic.name,
                partitions,
                ..Default::default()
            }
        })
        .collect();
    DescribeProducersResponse {
        topics,
        ..Default::default()
    }
}
