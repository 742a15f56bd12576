//! AlterPartitionReassignments: moves partitions to new replica sets, or cancels a move
//! ([`crate::cluster::Controller::alter_partition_reassignments`]). As Kafka's
//! `ControllerApis.handleAlterPartitionReassignments`: ALTER on the cluster is required
//! (`CLUSTER_AUTHORIZATION_FAILED` at the top and for every partition, the request's
//! `getErrorResponse`); `TimeoutMs` is the controller's deadline, so 0 or less has passed
//! before the operation runs (`REQUEST_TIMED_OUT`, nothing changed); a positive one is not
//! checked further (the commit has its own 30 s limit). On a broker of a cluster the request
//! is forwarded to the active controller (`forwarding.rs`); a single node answers it itself
//! as Kafka's combined node does. v1 carries `AllowReplicationFactorChange` (KIP-860),
//! echoed in the response; v0 always allows it.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::alter_partition_reassignments_request::AlterPartitionReassignmentsRequest;
use gregor_protocol::messages::alter_partition_reassignments_response::{
    AlterPartitionReassignmentsResponse, ReassignablePartitionResponse, ReassignableTopicResponse,
};

use super::authorize::Checker;
use super::{RequestContext, controller_failure};
use crate::authorizer::AclOperation;

/// Versions served (all of Kafka 4.3's).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

/// The whole request failed with `code` (and `message`): at the top and for every partition.
pub(crate) fn all_failed(
    request: &AlterPartitionReassignmentsRequest,
    code: i16,
    message: Option<String>,
) -> AlterPartitionReassignmentsResponse {
    AlterPartitionReassignmentsResponse {
        allow_replication_factor_change: request.allow_replication_factor_change,
        error_code: code,
        error_message: message.clone().map(Into::into),
        responses: request
            .topics
            .iter()
            .map(|t| ReassignableTopicResponse {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| ReassignablePartitionResponse {
                        partition_index: p.partition_index,
                        error_code: code,
                        error_message: message.clone().map(Into::into),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn default_message(code: i16) -> Option<String> {
    gregor_protocol::ErrorCode::from(code)
        .default_message()
        .map(str::to_string)
}

/// Answers an AlterPartitionReassignments request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    if !Checker::new(ctx).cluster(AclOperation::Alter) {
        let code = error_code::CLUSTER_AUTHORIZATION_FAILED;
        return all_failed(&request, code, default_message(code));
    }
    if request.timeout_ms <= 0 {
        let code = error_code::REQUEST_TIMED_OUT;
        return all_failed(&request, code, default_message(code));
    }
    let allow = version < 1 || request.allow_replication_factor_change;
    let topics: Vec<(String, Vec<crate::cluster::controller::ReassignmentTarget>)> = request
        .topics
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.replicas.clone()))
                    .collect(),
            )
        })
        .collect();
    let outcome = ctx
        .broker
        .controller
        .run(move |controller| controller.alter_partition_reassignments(allow, &topics))
        .await;
    match outcome {
        Ok(results) => AlterPartitionReassignmentsResponse {
            allow_replication_factor_change: request.allow_replication_factor_change,
            error_code: error_code::NONE,
            error_message: None,
            responses: results
                .into_iter()
                .map(|(name, partitions)| ReassignableTopicResponse {
                    name: name.into(),
                    partitions: partitions
                        .into_iter()
                        .map(|(index, error)| ReassignablePartitionResponse {
                            partition_index: index,
                            error_code: error.as_ref().map_or(error_code::NONE, |e| e.code),
                            error_message: error.and_then(|e| e.message).map(Into::into),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        },
        Err(err) => {
            let error = controller_failure(&err);
            all_failed(&request, error.code, error.message)
        }
    }
}
