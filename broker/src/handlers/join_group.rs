//! JoinGroup v0-v9: the response waits until the group's join phase completes (see
//! [`crate::groups`]). From v4 a new dynamic member first gets `MEMBER_ID_REQUIRED` with
//! its member id and must join again with it.

use gregor_protocol::VersionRange;
use gregor_protocol::messages::join_group_request::JoinGroupRequest;
use gregor_protocol::messages::join_group_response::JoinGroupResponse;
use gregor_protocol::messages::request_header::RequestHeader;

use super::RequestContext;
use crate::groups::{JoinParams, Protocol, client_host};

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 9 };

/// Answers a JoinGroup request (possibly much later).
pub async fn handle(
    ctx: &RequestContext,
    header: &RequestHeader,
    version: i16,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    // KafkaApis: READ on the group, or GROUP_AUTHORIZATION_FAILED.
    if let Some(code) = super::authorize::Checker::new(ctx)
        .group_error(crate::authorizer::AclOperation::Read, &request.group_id)
    {
        // As Kafka's JoinGroupRequest.getErrorResponse.
        return JoinGroupResponse {
            error_code: code,
            generation_id: -1,
            protocol_name: Some("".into()),
            ..Default::default()
        };
    }
    let params = JoinParams {
        group_id: request.group_id.to_string(),
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_deref().map(str::to_string),
        client_id: header.client_id.as_deref().unwrap_or("").to_string(),
        client_host: client_host(&ctx.peer),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version == 0 {
            request.session_timeout_ms
        } else {
            request.rebalance_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| Protocol {
                name: p.name.to_string(),
                metadata: p.metadata,
            })
            .collect(),
        version,
        reason: request.reason.as_deref().map(str::to_string),
    };
    let mut response = ctx.broker.groups.join_group(params).await;
    if version < 7 && response.protocol_name.is_none() {
        response.protocol_name = Some("".into());
    }
    if version < 9 {
        response.skip_assignment = false;
    }
    response
}
