//! CreatePartitions: more partitions for existing topics through the controller, as Kafka's
//! `ControllerApis.createPartitions` and `ReplicationControlManager.createPartitions`
//! answer: `INVALID_REQUEST` "Duplicate topic name." (first) for a topic given twice,
//! `UNKNOWN_TOPIC_OR_PARTITION` (no message), `INVALID_PARTITIONS` unless the count grows,
//! `INVALID_REPLICA_ASSIGNMENT` for assignments of the wrong number, size or brokers,
//! `POLICY_VIOLATION` past 10,000 new partitions in one request. `validate_only` checks
//! without changing anything; a `timeout_ms` of 0 or less has passed before the operation
//! runs (`REQUEST_TIMED_OUT` for every topic, as Kafka's KRaft controller).
//!
//! The new partitions' logs are made in the same controller call, before the records are
//! written; a topic whose new logs cannot be made gets `KAFKA_STORAGE_ERROR` and keeps its
//! partition count.

use std::collections::HashMap;

use gregor_protocol::VersionRange;
use gregor_protocol::messages::create_partitions_request::CreatePartitionsRequest;
use gregor_protocol::messages::create_partitions_response::{
    CreatePartitionsResponse, CreatePartitionsTopicResult,
};
use gregor_protocol::messages::request_header::RequestHeader;

use super::{RequestContext, controller_failure, default_message};
use crate::cluster::controller::{ApiError, NewPartitions};
use gregor_protocol::error_code;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 3 };

/// Answers a CreatePartitions request.
pub async fn handle(
    ctx: &RequestContext,
    header: &RequestHeader,
    version: i16,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    // KIP-599: strict from v3 (ControllerApis.createPartitions).
    let quota = crate::quotas::controller_mutation::for_request(ctx, header, version, 3);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for topic in &request.topics {
        *counts.entry(&*topic.name).or_default() += 1;
    }
    let mut results = Vec::new();
    let mut duplicates: Vec<&str> = Vec::new();
    let mut topics = Vec::new();
    // KafkaApis.handleCreatePartitionsRequest: ALTER on each topic.
    let checker = super::authorize::Checker::new(ctx);
    for topic in &request.topics {
        let name: &str = &topic.name;
        if counts[name] == 1 && !checker.topic(crate::authorizer::AclOperation::Alter, name) {
            results.push(result(
                name,
                &ApiError::new(
                    error_code::TOPIC_AUTHORIZATION_FAILED,
                    "The topic authorization is failed.",
                ),
            ));
            continue;
        }
        if counts[name] > 1 {
            if !duplicates.contains(&name) {
                duplicates.push(name);
                results.push(result(
                    name,
                    &ApiError::new(error_code::INVALID_REQUEST, "Duplicate topic name."),
                ));
            }
            continue;
        }
        topics.push(NewPartitions {
            topic: name.to_string(),
            count: topic.count,
            assignments: topic
                .assignments
                .as_ref()
                .map(|assignments| assignments.iter().map(|a| a.broker_ids.clone()).collect()),
        });
    }
    let every_topic_fails = |error: ApiError| CreatePartitionsResponse {
        throttle_time_ms: 0,
        results: request
            .topics
            .iter()
            .map(|t| result(&t.name, &error))
            .collect(),
        ..Default::default()
    };
    if !topics.is_empty() {
        if request.timeout_ms <= 0 {
            return every_topic_fails(ApiError {
                code: error_code::REQUEST_TIMED_OUT,
                message: None,
            });
        }
        let validate_only = request.validate_only;
        let limited = ctx
            .broker
            .create_partitions_limited(topics, validate_only, quota.clone());
        match limited.await {
            Ok(applied) => {
                for r in applied.results {
                    results.push(match &r.error {
                        None => CreatePartitionsTopicResult {
                            name: r.topic.as_str().into(),
                            error_code: error_code::NONE,
                            error_message: None,
                            ..Default::default()
                        },
                        Some(error) => result(&r.topic, error),
                    });
                }
            }
            Err(err) => return every_topic_fails(controller_failure(&err)),
        }
    }
    CreatePartitionsResponse {
        throttle_time_ms: quota.throttle_time_ms(),
        results,
        ..Default::default()
    }
}

/// A failed topic. Kafka's controller throws a bare `UnknownTopicOrPartitionException`
/// for an unknown topic, so that error goes without a message.
fn result(name: &str, error: &ApiError) -> CreatePartitionsTopicResult {
    let bare = error.code == error_code::UNKNOWN_TOPIC_OR_PARTITION
        && error.message.as_deref() == default_message(error.code);
    let message = if bare { None } else { error.message.as_deref() };
    CreatePartitionsTopicResult {
        name: name.into(),
        error_code: error.code,
        error_message: message.map(Into::into),
        ..Default::default()
    }
}
