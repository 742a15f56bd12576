//! CreateTopics: new topics through the controller, as Kafka's `ControllerApis.createTopics`
//! and `ReplicationControlManager.createTopics` answer them.
//!
//! * A name given more than once gets one `INVALID_REQUEST` "Duplicate topic name." and is
//!   not created; the other topics are processed.
//! * `__cluster_metadata` gets `error_code::TOPIC_AUTHORIZATION_FAILED` "Authorization failed." (Kafka
//!   keeps it out of the controller's hands the same way).
//! * `timeout_ms` is the controller's deadline: 0 or less has passed before the operation
//!   runs, so every topic gets `REQUEST_TIMED_OUT` and nothing is created (Kafka's KRaft
//!   behaviour); a positive timeout is always met here (one node, nothing to wait for).
//! * Results come in request order, then the duplicates, then the refused names. Created
//!   topics carry their id (v7+; a random one for `validate_only`, as Kafka), and from v5
//!   their partition count, replication factor and every topic config with its source.
//!
//! The partitions' logs are made in the same controller call, before the records are
//! written: a topic whose logs cannot be made (a disk error, no space or descriptors) gets
//! `KAFKA_STORAGE_ERROR` with the reason and is not created, so it can be created again
//! once the disk is fixed.

use std::collections::HashMap;

use gregor_protocol::messages::create_topics_request::CreateTopicsRequest;
use gregor_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsResponse,
};
use gregor_protocol::messages::request_header::RequestHeader;
use gregor_protocol::{Uuid, VersionRange};

use super::{RequestContext, controller_failure};
use crate::cluster::controller::{ApiError, CreateTopicResult, NewTopic, ReplicaAssignment};
use crate::cluster::random_uuid;
use gregor_protocol::error_code;

/// Versions served: Kafka 3.9's 0-7 (Kafka 4 serves 2-7). v0 has no `validate_only` and
/// v0's results no `error_message` (dropped on the wire); the handling is the same.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 7 };

/// Kafka's metadata topic, which clients may not create.
const CLUSTER_METADATA_TOPIC: &str = "__cluster_metadata";

/// Answers a CreateTopics request.
pub async fn handle(
    ctx: &RequestContext,
    header: &RequestHeader,
    version: i16,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    // KIP-599: strict from v6 (ControllerApis.createTopics).
    let quota = crate::quotas::controller_mutation::for_request(ctx, header, version, 6);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for topic in &request.topics {
        *counts.entry(topic.name.as_ref()).or_default() += 1;
    }
    let mut duplicates: Vec<String> = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    let mut topics: Vec<NewTopic> = Vec::new();
    // KafkaApis.handleCreateTopicsRequest: CREATE on the cluster or on the topic.
    let checker = super::authorize::Checker::new(ctx);
    let cluster_create = checker.cluster(crate::authorizer::AclOperation::Create);
    for topic in &request.topics {
        let name: &str = topic.name.as_ref();
        if counts[name] > 1 {
            if !duplicates.iter().any(|d| d == name) {
                duplicates.push(name.to_string());
            }
        } else if name == CLUSTER_METADATA_TOPIC
            || !(cluster_create || checker.topic(crate::authorizer::AclOperation::Create, name))
        {
            refused.push(name.to_string());
        } else {
            topics.push(NewTopic {
                name: name.to_string(),
                num_partitions: topic.num_partitions,
                replication_factor: topic.replication_factor,
                assignments: topic
                    .assignments
                    .iter()
                    .map(|a| ReplicaAssignment {
                        partition: a.partition_index,
                        broker_ids: a.broker_ids.clone(),
                    })
                    .collect(),
                configs: topic
                    .configs
                    .iter()
                    .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                    .collect(),
            });
        }
    }
    let every_topic_fails = |error: ApiError| CreateTopicsResponse {
        throttle_time_ms: 0,
        topics: request
            .topics
            .iter()
            .map(|t| failed(t.name.as_ref(), &error))
            .collect(),
        ..Default::default()
    };
    if !topics.is_empty() && request.timeout_ms <= 0 {
        return every_topic_fails(ApiError {
            code: error_code::REQUEST_TIMED_OUT,
            message: None,
        });
    }
    let validate_only = request.validate_only;
    let mut results = Vec::new();
    if !topics.is_empty() {
        let limited = ctx
            .broker
            .create_topics_limited(topics, validate_only, quota.clone());
        match limited.await {
            Ok(applied) => results.extend(
                applied
                    .results
                    .into_iter()
                    .map(|r| topic_result(r, validate_only)),
            ),
            Err(err) => return every_topic_fails(controller_failure(&err)),
        }
    }
    let duplicate = ApiError::new(error_code::INVALID_REQUEST, "Duplicate topic name.");
    results.extend(duplicates.iter().map(|name| failed(name, &duplicate)));
    let unauthorized = ApiError::new(
        error_code::TOPIC_AUTHORIZATION_FAILED,
        "Authorization failed.",
    );
    results.extend(refused.iter().map(|name| failed(name, &unauthorized)));
    CreateTopicsResponse {
        throttle_time_ms: quota.throttle_time_ms(),
        topics: results,
        ..Default::default()
    }
}

/// The wire result of one topic the controller handled.
fn topic_result(result: CreateTopicResult, validate_only: bool) -> CreatableTopicResult {
    if let Some(error) = &result.error {
        return failed(&result.name, error);
    }
    let topic_id = if validate_only && result.topic_id.is_nil() {
        // Kafka draws the id before it knows the records will be dropped.
        random_uuid()
    } else {
        result.topic_id
    };
    CreatableTopicResult {
        name: result.name.as_str().into(),
        topic_id,
        error_code: error_code::NONE,
        error_message: None,
        topic_config_error_code: error_code::NONE,
        num_partitions: result.num_partitions,
        replication_factor: result.replication_factor,
        configs: Some(
            result
                .configs
                .into_iter()
                .map(|c| CreatableTopicConfigs {
                    name: c.name.into(),
                    value: c.value.map(Into::into),
                    read_only: c.read_only,
                    config_source: c.source.id(),
                    is_sensitive: c.is_sensitive,
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }
}

/// A topic that was not created: no id, -1 counts, no configs.
fn failed(name: &str, error: &ApiError) -> CreatableTopicResult {
    CreatableTopicResult {
        name: name.into(),
        topic_id: Uuid::nil(),
        error_code: error.code,
        error_message: error.message.as_deref().map(Into::into),
        num_partitions: -1,
        replication_factor: -1,
        configs: Some(Vec::new()),
        ..Default::default()
    }
}
