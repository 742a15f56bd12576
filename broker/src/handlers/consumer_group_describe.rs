//! ConsumerGroupDescribe v0-v1 (KIP-848): each consumer group's epochs, assignor and
//! members with their current and target assignments (topic names from the image).
//! A group that does not exist or is not a consumer group is GROUP_ID_NOT_FOUND, as
//! Kafka's `consumerGroupDescribe` answers. A group the principal may not DESCRIBE is
//! GROUP_AUTHORIZATION_FAILED (no message), listed before the others as Kafka's
//! `handleConsumerGroupDescribe` does; the others carry the principal's authorized
//! operations on the group when `include_authorized_operations` asks. A group assigning
//! a topic the principal may not DESCRIBE is TOPIC_AUTHORIZATION_FAILED, without members.

use gregor_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use gregor_protocol::messages::consumer_group_describe_response::{
    Assignment, ConsumerGroupDescribeResponse, DescribedGroup, Member, TopicPartitions,
};
use gregor_protocol::{ErrorCode, VersionRange, error_code};

use super::RequestContext;
use super::consumer_group_heartbeat::consumer_protocol_enabled;
use crate::groups::consumer::assignor::Assignment as Partitions;
use crate::groups::consumer::state_name;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

/// Kafka's message for a group hidden for its topics.
const UNDESCRIBABLE_TOPICS: &str =
    "The group has described topic(s) that the client is not authorized to describe.";

/// Kafka's "no authorized operations asked for" value.
const NO_OPERATIONS: i32 = i32::MIN;

/// Answers a ConsumerGroupDescribe request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let image = ctx.broker.image();
    let assignment = |a: &Partitions| Assignment {
        topic_partitions: a
            .iter()
            .map(|(topic, ps)| TopicPartitions {
                topic_id: *topic,
                topic_name: image
                    .topic_by_id(topic)
                    .map(|t| t.name.as_str())
                    .unwrap_or("")
                    .into(),
                partitions: ps.iter().copied().collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let enabled = consumer_protocol_enabled(ctx);
    let checker = super::authorize::Checker::new(ctx);
    let mut groups = Vec::with_capacity(request.group_ids.len());
    let mut authorized = Vec::with_capacity(request.group_ids.len());
    for group_id in &request.group_ids {
        if enabled && !checker.group(crate::authorizer::AclOperation::Describe, group_id) {
            groups.push(DescribedGroup {
                error_code: error_code::GROUP_AUTHORIZATION_FAILED,
                error_message: None,
                group_id: group_id.clone(),
                authorized_operations: NO_OPERATIONS,
                ..Default::default()
            });
        } else {
            authorized.push(group_id);
        }
    }
    for group_id in authorized {
        let failed = |code: i16, message: String| DescribedGroup {
            error_code: code,
            error_message: if message.is_empty() {
                ErrorCode::from(code).default_message().map(Into::into)
            } else {
                Some(message.into())
            },
            group_id: group_id.clone(),
            authorized_operations: NO_OPERATIONS,
            ..Default::default()
        };
        if !enabled {
            groups.push(failed(error_code::UNSUPPORTED_VERSION, String::new()));
            continue;
        }
        if group_id.is_empty() {
            groups.push(failed(
                error_code::INVALID_GROUP_ID,
                "Group id can't be empty.".into(),
            ));
            continue;
        }
        match ctx.broker.groups.describe_consumer_group(group_id).await {
            Err((code, message)) => groups.push(failed(code, message)),
            Ok((group, assignor)) => {
                let members = group
                    .members
                    .values()
                    .map(|m| Member {
                        member_id: m.member_id.as_str().into(),
                        instance_id: m.instance_id.as_deref().map(Into::into),
                        rack_id: m.rack_id.as_deref().map(Into::into),
                        member_epoch: m.assignment.epoch,
                        client_id: m.client_id.as_str().into(),
                        client_host: m.client_host.as_str().into(),
                        subscribed_topic_names: m
                            .subscribed_topic_names
                            .iter()
                            .map(|t| t.as_str().into())
                            .collect(),
                        subscribed_topic_regex: m.subscribed_topic_regex.as_deref().map(Into::into),
                        assignment: assignment(&m.assignment.assigned),
                        target_assignment: assignment(
                            &group.target.get(&m.member_id).cloned().unwrap_or_default(),
                        ),
                        // v1: 1 for a member of the consumer protocol, 0 for one of the
                        // classic protocol (KIP-1099).
                        member_type: match (version >= 1, m.classic.is_some()) {
                            (false, _) => -1,
                            (true, true) => 0,
                            (true, false) => 1,
                        },
                        ..Default::default()
                    })
                    .collect();
                groups.push(DescribedGroup {
                    error_code: error_code::NONE,
                    error_message: None,
                    group_id: group_id.clone(),
                    group_state: state_name(&group).into(),
                    group_epoch: group.epoch,
                    assignment_epoch: group.assignment_epoch,
                    assignor_name: assignor.as_str().into(),
                    members,
                    authorized_operations: if request.include_authorized_operations {
                        checker.operations(crate::authorizer::ResourceType::Group, group_id)
                    } else {
                        NO_OPERATIONS
                    },
                    ..Default::default()
                });
            }
        }
    }
    // Kafka's `handleConsumerGroupDescribe`: a group whose members' current or target
    // assignments name a topic the principal may not DESCRIBE is not shown.
    if checker.enabled() {
        for group in groups
            .iter_mut()
            .filter(|g| g.error_code == error_code::NONE)
        {
            let hidden = group
                .members
                .iter()
                .flat_map(|m| {
                    (m.assignment.topic_partitions.iter())
                        .chain(&m.target_assignment.topic_partitions)
                })
                .any(|t| !checker.topic(crate::authorizer::AclOperation::Describe, &t.topic_name));
            if hidden {
                *group = DescribedGroup {
                    error_code: error_code::TOPIC_AUTHORIZATION_FAILED,
                    error_message: Some(UNDESCRIBABLE_TOPICS.into()),
                    group_id: group.group_id.clone(),
                    authorized_operations: NO_OPERATIONS,
                    ..Default::default()
                };
            }
        }
    }
    ConsumerGroupDescribeResponse {
        throttle_time_ms: 0,
        groups,
        ..Default::default()
    }
}
