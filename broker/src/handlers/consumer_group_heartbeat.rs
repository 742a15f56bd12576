//! ConsumerGroupHeartbeat v0-v1 (KIP-848): join, heartbeat and leave of a consumer group;
//! the broker computes the assignment (see `groups::consumer`). Served only while the
//! `group.version` feature is finalized at level 1 or more, as Kafka's `KafkaApis` does
//! (UNSUPPORTED_VERSION otherwise).

use gregor_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use gregor_protocol::messages::consumer_group_heartbeat_response::{
    Assignment, ConsumerGroupHeartbeatResponse, TopicPartitions,
};
use gregor_protocol::messages::request_header::RequestHeader;
use gregor_protocol::{ErrorCode, VersionRange, error_code};

use super::RequestContext;
use crate::groups::client_host;
use crate::groups::consumer::HeartbeatRequest;
use crate::groups::consumer::assignor::Assignment as Partitions;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

use crate::cluster::controller::GROUP_VERSION_FEATURE;

/// Whether `group.version` is finalized at 1 or more.
pub fn consumer_protocol_enabled(ctx: &RequestContext) -> bool {
    ctx.broker
        .image()
        .feature_level(GROUP_VERSION_FEATURE)
        .is_some_and(|l| l >= 1)
}

/// An error answer; without a message of its own, the code's default message (Kafka's
/// `ApiError` of the exception).
fn error(code: i16, message: String) -> ConsumerGroupHeartbeatResponse {
    let message = if message.is_empty() {
        ErrorCode::from(code).default_message().map(str::to_string)
    } else {
        Some(message)
    };
    ConsumerGroupHeartbeatResponse {
        error_code: code,
        error_message: message.map(Into::into),
        ..Default::default()
    }
}

/// Answers a ConsumerGroupHeartbeat request.
pub async fn handle(
    ctx: &RequestContext,
    header: &RequestHeader,
    version: i16,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    if !consumer_protocol_enabled(ctx) {
        return error(error_code::UNSUPPORTED_VERSION, String::new());
    }
    tracing::trace!("ConsumerGroupHeartbeat v{version}: {request:?}");
    // KafkaApis: READ on the group, or GROUP_AUTHORIZATION_FAILED; then DESCRIBE on every
    // subscribed topic named, or TOPIC_AUTHORIZATION_FAILED. Both without a message
    // (`ConsumerGroupHeartbeatRequest.getErrorResponse` sets only the code).
    let checker = super::authorize::Checker::new(ctx);
    let denied = checker
        .group_error(crate::authorizer::AclOperation::Read, &request.group_id)
        .or_else(|| {
            let names = request.subscribed_topic_names.iter().flatten();
            names
                .into_iter()
                .find_map(|t| checker.topic_error(crate::authorizer::AclOperation::Describe, t))
        });
    if let Some(code) = denied {
        return ConsumerGroupHeartbeatResponse {
            error_code: code,
            error_message: None,
            ..Default::default()
        };
    }
    let owned = request.topic_partitions.as_ref().map(|list| {
        let mut a = Partitions::new();
        for tp in list {
            a.entry(tp.topic_id)
                .or_default()
                .extend(tp.partitions.iter().copied());
        }
        a.retain(|_, ps| !ps.is_empty());
        a
    });
    let params = HeartbeatRequest {
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.as_deref().map(str::to_string),
        rack_id: request.rack_id.as_deref().map(str::to_string),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        client_id: header.client_id.as_deref().unwrap_or("").to_string(),
        client_host: client_host(&ctx.peer),
        subscribed_topic_names: request
            .subscribed_topic_names
            .as_ref()
            .map(|t| t.iter().map(|s| s.to_string()).collect()),
        subscribed_topic_regex: request
            .subscribed_topic_regex
            .as_deref()
            .map(str::to_string),
        server_assignor: request.server_assignor.as_deref().map(str::to_string),
        owned,
        classic: None,
    };
    let groups = &ctx.broker.groups;
    match groups
        .consumer_group_heartbeat(&request.group_id, params, version)
        .await
    {
        Ok(outcome) => ConsumerGroupHeartbeatResponse {
            error_code: error_code::NONE,
            member_id: Some(outcome.member_id.as_str().into()),
            member_epoch: outcome.member_epoch,
            heartbeat_interval_ms: groups
                .consumer_group_timeouts(&request.group_id)
                .heartbeat_interval_ms,
            assignment: outcome.assignment.map(|a| Assignment {
                topic_partitions: a
                    .iter()
                    .map(|(topic, ps)| TopicPartitions {
                        topic_id: *topic,
                        partitions: ps.iter().copied().collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        },
        Err((code, message)) => {
            tracing::debug!(group = %request.group_id, "ConsumerGroupHeartbeat v{version}: error {code}: {message}");
            error(code, message)
        }
    }
}
