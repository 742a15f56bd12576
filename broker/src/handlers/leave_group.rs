//! LeaveGroup v0-v5: one member (v0-v2) or a batch of members, dynamic by member id or
//! static by group instance id (v3+).

use gregor_protocol::VersionRange;
use gregor_protocol::messages::leave_group_request::LeaveGroupRequest;
use gregor_protocol::messages::leave_group_response::{LeaveGroupResponse, MemberResponse};

use super::RequestContext;
use gregor_protocol::error_code;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// Answers a LeaveGroup request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    // KafkaApis: READ on the group, or GROUP_AUTHORIZATION_FAILED.
    if let Some(error_code) = super::authorize::Checker::new(ctx)
        .group_error(crate::authorizer::AclOperation::Read, &request.group_id)
    {
        return LeaveGroupResponse {
            error_code,
            ..Default::default()
        };
    }
    let members: Vec<(String, Option<String>, Option<String>)> = if version < 3 {
        vec![(request.member_id.to_string(), None, None)]
    } else {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_deref().map(str::to_string),
                    m.reason.as_deref().map(str::to_string),
                )
            })
            .collect()
    };
    let (error, members) = ctx
        .broker
        .groups
        .leave_group(&request.group_id, members)
        .await;
    if version < 3 {
        // One member: its error becomes the response's (Kafka's LeaveGroupResponse).
        let error = if error != error_code::NONE {
            error
        } else {
            members
                .iter()
                .map(|m| m.error_code)
                .find(|code| *code != error_code::NONE)
                .unwrap_or(error_code::NONE)
        };
        return LeaveGroupResponse {
            error_code: error,
            ..Default::default()
        };
    }
    LeaveGroupResponse {
        error_code: error,
        members: members
            .into_iter()
            .map(|m| MemberResponse {
                member_id: m.member_id.into(),
                group_instance_id: m.group_instance_id.map(Into::into),
                error_code: m.error_code,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
