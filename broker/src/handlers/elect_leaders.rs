//! ElectLeaders: preferred or unclean leader elections. Kafka's broker forwards it to the
//! controller; here the controller is called directly
//! ([`crate::cluster::Controller::elect_leaders`]). ALTER on the cluster is required
//! (`CLUSTER_AUTHORIZATION_FAILED` for every partition asked, none listed for all
//! partitions, as Kafka's `handleElectLeaders`); an unknown election type is
//! `INVALID_REQUEST`; v0 has no election type and elects preferred leaders. A topic named
//! twice is answered once, with the partitions of every occurrence.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::elect_leaders_request::ElectLeadersRequest;
use gregor_protocol::messages::elect_leaders_response::{
    ElectLeadersResponse, PartitionResult, ReplicaElectionResult,
};

use super::authorize::Checker;
use super::{RequestContext, controller_failure};
use crate::authorizer::AclOperation;
use crate::cluster::controller::ElectionType;

/// Versions served (all of Kafka's).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// Every partition asked for with the same error.
/// Every asked partition failed with `code` (and `message`).
pub(crate) fn all_failed(
    request: &ElectLeadersRequest,
    code: i16,
    message: Option<String>,
) -> Vec<ReplicaElectionResult> {
    request
        .topic_partitions
        .iter()
        .flatten()
        .map(|t| ReplicaElectionResult {
            topic: t.topic.clone(),
            partition_result: t
                .partitions
                .iter()
                .map(|p| PartitionResult {
                    partition_id: *p,
                    error_code: code,
                    error_message: message.clone().map(Into::into),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect()
}

/// Answers an ElectLeaders request.
pub async fn handle(
    ctx: &RequestContext,
    version: i16,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    if !Checker::new(ctx).cluster(AclOperation::Alter) {
        let message = gregor_protocol::ErrorCode::from(error_code::CLUSTER_AUTHORIZATION_FAILED)
            .default_message()
            .map(str::to_string);
        return ElectLeadersResponse {
            error_code: error_code::CLUSTER_AUTHORIZATION_FAILED,
            replica_election_results: all_failed(
                &request,
                error_code::CLUSTER_AUTHORIZATION_FAILED,
                message,
            ),
            ..Default::default()
        };
    }
    let election_type = if version == 0 {
        0
    } else {
        request.election_type
    };
    let Some(election) = ElectionType::from_i8(election_type) else {
        return ElectLeadersResponse {
            error_code: error_code::INVALID_REQUEST,
            replica_election_results: all_failed(
                &request,
                error_code::INVALID_REQUEST,
                Some(format!("Unknown election type {election_type}")),
            ),
            ..Default::default()
        };
    };
    let partitions: Option<Vec<(String, Vec<i32>)>> =
        request.topic_partitions.as_ref().map(|topics| {
            let mut merged: Vec<(String, Vec<i32>)> = Vec::new();
            for t in topics {
                match merged.iter_mut().find(|(name, _)| **name == *t.topic) {
                    Some((_, partitions)) => partitions.extend(t.partitions.iter().copied()),
                    None => merged.push((t.topic.to_string(), t.partitions.clone())),
                }
            }
            merged
        });
    let outcome = ctx
        .broker
        .controller
        .run(move |controller| controller.elect_leaders(election, partitions.as_deref()))
        .await;
    match outcome {
        Ok(results) => ElectLeadersResponse {
            error_code: error_code::NONE,
            replica_election_results: results
                .into_iter()
                .map(|(topic, partitions)| ReplicaElectionResult {
                    topic: topic.into(),
                    partition_result: partitions
                        .into_iter()
                        .map(|(partition, error)| PartitionResult {
                            partition_id: partition,
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
            ElectLeadersResponse {
                error_code: error.code,
                replica_election_results: all_failed(&request, error.code, error.message),
                ..Default::default()
            }
        }
    }
}
