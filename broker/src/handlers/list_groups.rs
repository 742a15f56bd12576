//! ListGroups v0-v5: every group of this coordinator, filtered by state (v4+) and type
//! (v5+; every group here is "classic"), as Kafka matches the filters (without case).

use gregor_protocol::VersionRange;
use gregor_protocol::messages::list_groups_request::ListGroupsRequest;
use gregor_protocol::messages::list_groups_response::{ListGroupsResponse, ListedGroup};

use super::RequestContext;
use gregor_protocol::error_code;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// Answers a ListGroups request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    let states: Vec<String> = if version >= 4 {
        request
            .states_filter
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        Vec::new()
    };
    let types: Vec<String> = if version >= 5 {
        request.types_filter.iter().map(|s| s.to_string()).collect()
    } else {
        Vec::new()
    };
    let mut groups = ctx.broker.groups.list_groups(&states, &types).await;
    // KafkaApis.handleListGroupsRequest: all groups with DESCRIBE on the cluster, else
    // those with DESCRIBE on the group.
    let checker = super::authorize::Checker::new(ctx);
    if !checker.cluster(crate::authorizer::AclOperation::Describe) {
        groups.retain(|g| checker.group(crate::authorizer::AclOperation::Describe, &g.group_id));
    }
    ListGroupsResponse {
        error_code: error_code::NONE,
        groups: groups
            .into_iter()
            .map(|g| ListedGroup {
                group_id: g.group_id.into(),
                protocol_type: g.protocol_type.into(),
                group_state: g.state.into(),
                group_type: g.group_type.into(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
