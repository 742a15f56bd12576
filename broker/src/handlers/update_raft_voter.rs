//! UpdateRaftVoter (KIP-853): a voter tells the leader its new endpoint, as Kafka's
//! `KafkaRaftClient.handleUpdateVoterRequest` and `UpdateVoterHandler` do (the change
//! itself: [`Quorum::update_voter`](crate::cluster::quorum::Quorum::update_voter)).
//!
//! Served on the controller listener only; CLUSTER_ACTION on the cluster (a request
//! between nodes). A given cluster id must be this cluster's; the voter must be in the set
//! with that directory id (VOTER_NOT_FOUND), its listeners must include the first
//! `controller.listener.names` one and its `kraft.version` range the finalized level
//! (INVALID_REQUEST). The answer names the leader as this node knows it.

use gregor_protocol::messages::update_raft_voter_request::UpdateRaftVoterRequest;
use gregor_protocol::messages::update_raft_voter_response::{
    CurrentLeader, UpdateRaftVoterResponse,
};
use gregor_protocol::{VersionRange, error_code};

use super::RequestContext;
use super::raft_voters::{Refusal, controller_endpoint, precheck, voter_change_refusal};
use crate::authorizer::AclOperation;

/// Versions served (all of Kafka's).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// Answers an UpdateRaftVoter request.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: UpdateRaftVoterRequest,
) -> UpdateRaftVoterResponse {
    let leader = current_leader(ctx);
    let answer = |refusal: Refusal| UpdateRaftVoterResponse {
        error_code: refusal.code,
        current_leader: leader.clone(),
        ..Default::default()
    };
    let quorum = match precheck(
        ctx,
        AclOperation::ClusterAction,
        request.cluster_id.as_deref(),
        "updating",
    ) {
        Ok(quorum) => quorum,
        Err(refusal) => return answer(refusal),
    };
    let listeners = request
        .listeners
        .iter()
        .map(|l| (&*l.name, &*l.host, l.port));
    let Ok(node) = controller_endpoint(ctx, request.voter_directory_id, listeners) else {
        return answer(Refusal::new(error_code::INVALID_REQUEST, String::new()));
    };
    let range = &request.kraft_version_feature;
    let finalized = quorum.kraft_version();
    if range.min_supported_version > finalized || range.max_supported_version < finalized {
        return answer(Refusal::new(error_code::INVALID_REQUEST, String::new()));
    }
    match quorum
        .update_voter(request.voter_id, request.voter_directory_id, node)
        .await
    {
        Ok(()) => UpdateRaftVoterResponse {
            current_leader: current_leader(ctx),
            ..Default::default()
        },
        Err(e) => answer(voter_change_refusal(e)),
    }
}

/// The leader with its controller endpoint, as this node knows it.
fn current_leader(ctx: &RequestContext) -> CurrentLeader {
    let Some(quorum) = ctx.broker.controller.quorum() else {
        return CurrentLeader::default();
    };
    let leader = quorum.leader();
    let node = leader.and_then(|id| quorum.voter_nodes().get(&id).cloned());
    CurrentLeader {
        leader_id: leader.unwrap_or(-1),
        leader_epoch: quorum.epoch(),
        host: node
            .as_ref()
            .map(|n| n.host.as_str().into())
            .unwrap_or_default(),
        port: node.map_or(-1, |n| i32::from(n.port)),
        ..Default::default()
    }
}
