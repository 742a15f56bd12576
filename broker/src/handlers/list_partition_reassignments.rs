//! ListPartitionReassignments: the partitions being moved, from the controller's image
//! ([`crate::cluster::Controller::list_partition_reassignments`]). As Kafka's
//! `ControllerApis.handleListPartitionReassignments`: DESCRIBE on the cluster is required
//! (`CLUSTER_AUTHORIZATION_FAILED` at the top, the topics asked echoed with their partition
//! indexes, as the request's `getErrorResponse`); the request has no deadline on the
//! controller (its `TimeoutMs` is not used, as in Kafka). Null topics list every partition
//! in progress; topics and partitions not found, or not moving, are left out. On a broker
//! of a cluster the request is forwarded to the active controller (`forwarding.rs`).

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsRequest;
use gregor_protocol::messages::list_partition_reassignments_response::{
    ListPartitionReassignmentsResponse, OngoingPartitionReassignment, OngoingTopicReassignment,
};

use super::RequestContext;
use super::authorize::Checker;
use crate::authorizer::AclOperation;

/// Versions served (Kafka's only one).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// The whole request failed with `code`: the topics asked with their bare partitions.
pub(crate) fn all_failed(
    request: &ListPartitionReassignmentsRequest,
    code: i16,
    message: Option<String>,
) -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse {
        error_code: code,
        error_message: message.map(Into::into),
        topics: request
            .topics
            .iter()
            .flatten()
            .map(|t| OngoingTopicReassignment {
                name: t.name.clone(),
                partitions: t
                    .partition_indexes
                    .iter()
                    .map(|p| OngoingPartitionReassignment {
                        partition_index: *p,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Answers a ListPartitionReassignments request.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    if !Checker::new(ctx).cluster(AclOperation::Describe) {
        let code = error_code::CLUSTER_AUTHORIZATION_FAILED;
        let message = gregor_protocol::ErrorCode::from(code)
            .default_message()
            .map(str::to_string);
        return all_failed(&request, code, message);
    }
    let asked: Option<Vec<(String, Vec<i32>)>> = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let listed = ctx
        .broker
        .controller
        .run(move |controller| controller.list_partition_reassignments(asked.as_deref()))
        .await;
    ListPartitionReassignmentsResponse {
        error_code: error_code::NONE,
        error_message: None,
        topics: listed
            .into_iter()
            .map(|(name, partitions)| OngoingTopicReassignment {
                name: name.into(),
                partitions: partitions
                    .into_iter()
                    .map(|p| OngoingPartitionReassignment {
                        partition_index: p.partition,
                        replicas: p.replicas,
                        adding_replicas: p.adding,
                        removing_replicas: p.removing,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
