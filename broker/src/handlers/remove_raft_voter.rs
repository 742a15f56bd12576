//! RemoveRaftVoter (KIP-853): takes a voter out of the metadata quorum, as Kafka's
//! `KafkaRaftClient.handleRemoveVoterRequest` and `RemoveVoterHandler` do (the change
//! itself: [`Quorum::remove_voter`](crate::cluster::quorum::Quorum::remove_voter)).
//!
//! ALTER on the cluster, else CLUSTER_AUTHORIZATION_FAILED; a broker forwards it to the
//! active controller. A given cluster id must be this cluster's (INCONSISTENT_CLUSTER_ID).
//! A voter that is not in the set with that directory id, or the last voter:
//! VOTER_NOT_FOUND; otherwise the errors of AddRaftVoter (`add_raft_voter.rs`).

use gregor_protocol::VersionRange;
use gregor_protocol::messages::remove_raft_voter_request::RemoveRaftVoterRequest;
use gregor_protocol::messages::remove_raft_voter_response::RemoveRaftVoterResponse;

use super::RequestContext;
use super::raft_voters::{Refusal, precheck, voter_change_refusal};
use crate::authorizer::AclOperation;

/// Versions served (all of Kafka's).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

fn answer(refusal: Refusal) -> RemoveRaftVoterResponse {
    RemoveRaftVoterResponse {
        error_code: refusal.code,
        error_message: refusal.message.map(Into::into),
        ..Default::default()
    }
}

/// Answers a RemoveRaftVoter request.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: RemoveRaftVoterRequest,
) -> RemoveRaftVoterResponse {
    let quorum = match precheck(
        ctx,
        AclOperation::Alter,
        request.cluster_id.as_deref(),
        "removing",
    ) {
        Ok(quorum) => quorum,
        Err(refusal) => return answer(refusal),
    };
    match quorum
        .remove_voter(request.voter_id, request.voter_directory_id)
        .await
    {
        Ok(()) => RemoveRaftVoterResponse::default(),
        Err(e) => answer(voter_change_refusal(e)),
    }
}
