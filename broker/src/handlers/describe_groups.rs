//! DescribeGroups v0-v6: state, protocol and members of each group (member metadata and
//! assignments only when Stable, as Kafka). An unknown group is "Dead": with
//! `GROUP_ID_NOT_FOUND` from v6, without an error before.

use gregor_protocol::VersionRange;
use gregor_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use gregor_protocol::messages::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
};

use super::RequestContext;
use super::metadata::AUTHORIZED_OPERATIONS_OMITTED;
use crate::authorizer::{AclOperation, ResourceType};
use gregor_protocol::error_code;
use gregor_protocol::error_code::GROUP_ID_NOT_FOUND;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 6 };

/// Every group operation (no authorizer; Kafka's `AclEntry.supportedOperations`): READ,
/// DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS, as a bit set of Kafka's ACL
/// operation codes.
pub const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);

/// Answers a DescribeGroups request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let include_ops = version >= 3 && request.include_authorized_operations;
    let mut groups = Vec::with_capacity(request.groups.len());
    let checker = super::authorize::Checker::new(ctx);
    for group_id in request.groups {
        // KafkaApis.handleDescribeGroupsRequest: DESCRIBE on the group
        // (DescribeGroupsResponse.groupError).
        if let Some(code) = checker.group_error(AclOperation::Describe, &group_id) {
            groups.push(DescribedGroup {
                error_code: code,
                group_id: group_id.clone(),
                authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
                ..Default::default()
            });
            continue;
        }
        if let Some(code) = ctx.broker.groups.coordinator_error(&group_id) {
            groups.push(DescribedGroup {
                error_code: code,
                group_id: group_id.clone(),
                authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
                ..Default::default()
            });
            continue;
        }
        let mut described = match ctx.broker.groups.describe_group(&group_id).await {
            Some(group) => DescribedGroup {
                error_code: error_code::NONE,
                group_id: group_id.clone(),
                group_state: group.state.into(),
                protocol_type: group.protocol_type.into(),
                protocol_data: group.protocol.into(),
                members: group
                    .members
                    .into_iter()
                    .map(|m| DescribedGroupMember {
                        member_id: m.member_id.into(),
                        group_instance_id: m.group_instance_id.map(Into::into),
                        client_id: m.client_id.into(),
                        client_host: m.client_host.into(),
                        member_metadata: m.metadata,
                        member_assignment: m.assignment,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            None if version >= 6 => DescribedGroup {
                error_code: GROUP_ID_NOT_FOUND,
                error_message: Some(format!("Group {group_id} not found.").into()),
                group_id: group_id.clone(),
                group_state: "Dead".into(),
                ..Default::default()
            },
            None => DescribedGroup {
                error_code: error_code::NONE,
                group_id: group_id.clone(),
                group_state: "Dead".into(),
                ..Default::default()
            },
        };
        described.authorized_operations = if include_ops && described.error_code == error_code::NONE
        {
            checker.operations(ResourceType::Group, &group_id)
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        };
        groups.push(described);
    }
    DescribeGroupsResponse {
        groups,
        ..Default::default()
    }
}
