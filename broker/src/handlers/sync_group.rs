//! SyncGroup v0-v5: the leader's assignments complete the rebalance; every member's
//! response waits until they are written to `__consumer_offsets`.

use gregor_protocol::VersionRange;
use gregor_protocol::messages::sync_group_request::SyncGroupRequest;
use gregor_protocol::messages::sync_group_response::SyncGroupResponse;

use super::RequestContext;
use crate::groups::SyncParams;
use gregor_protocol::error_code::INCONSISTENT_GROUP_PROTOCOL;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// Answers a SyncGroup request (possibly much later).
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    // KafkaApis: READ on the group, or GROUP_AUTHORIZATION_FAILED.
    if let Some(code) = super::authorize::Checker::new(ctx)
        .group_error(crate::authorizer::AclOperation::Read, &request.group_id)
    {
        return SyncGroupResponse {
            error_code: code,
            ..Default::default()
        };
    }
    // From v5 the protocol type and name are mandatory.
    if version >= 5 && (request.protocol_type.is_none() || request.protocol_name.is_none()) {
        return SyncGroupResponse {
            error_code: INCONSISTENT_GROUP_PROTOCOL,
            ..Default::default()
        };
    }
    let params = SyncParams {
        group_id: request.group_id.to_string(),
        generation_id: request.generation_id,
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_deref().map(str::to_string),
        protocol_type: request.protocol_type.as_deref().map(str::to_string),
        protocol_name: request.protocol_name.as_deref().map(str::to_string),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    ctx.broker.groups.sync_group(params).await
}
