//! DeleteGroups v0-v2: only empty groups (`NON_EMPTY_GROUP` otherwise); the group's
//! offsets and metadata get tombstones in `__consumer_offsets`.

use gregor_protocol::VersionRange;
use gregor_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use gregor_protocol::messages::delete_groups_response::{
    DeletableGroupResult, DeleteGroupsResponse,
};

use super::RequestContext;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// Answers a DeleteGroups request.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    let checker = super::authorize::Checker::new(ctx);
    for group_id in request.groups_names {
        // KafkaApis.handleDeleteGroupsRequest: DELETE on the group.
        let error_code =
            match checker.group_error(crate::authorizer::AclOperation::Delete, &group_id) {
                Some(code) => code,
                None => ctx.broker.groups.delete_group(&group_id).await,
            };
        results.push(DeletableGroupResult {
            group_id,
            error_code,
            ..Default::default()
        });
    }
    DeleteGroupsResponse {
        results,
        ..Default::default()
    }
}
