//! Heartbeat v0-v4: keeps a member's session alive and tells it when to rejoin
//! (`REBALANCE_IN_PROGRESS`).

use gregor_protocol::VersionRange;
use gregor_protocol::messages::heartbeat_request::HeartbeatRequest;
use gregor_protocol::messages::heartbeat_response::HeartbeatResponse;

use super::RequestContext;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

/// Answers a Heartbeat request.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: HeartbeatRequest,
) -> HeartbeatResponse {
    // KafkaApis: READ on the group, or GROUP_AUTHORIZATION_FAILED.
    if let Some(error_code) = super::authorize::Checker::new(ctx)
        .group_error(crate::authorizer::AclOperation::Read, &request.group_id)
    {
        return HeartbeatResponse {
            error_code,
            ..Default::default()
        };
    }
    let error_code = ctx
        .broker
        .groups
        .heartbeat(
            &request.group_id,
            request.generation_id,
            &request.member_id,
            request.group_instance_id.as_deref(),
        )
        .await;
    HeartbeatResponse {
        error_code,
        ..Default::default()
    }
}
