//! AddRaftVoter (KIP-853): makes a controller a voter of the metadata quorum, as Kafka's
//! `KafkaRaftClient.handleAddVoterRequest` and `AddVoterHandler` do (the change itself:
//! [`Quorum::add_voter`](crate::cluster::quorum::Quorum::add_voter)).
//!
//! * ALTER on the cluster (Kafka's `ControllerApis.handleAddRaftVoter`), else
//!   CLUSTER_AUTHORIZATION_FAILED. A broker forwards the request to the active controller
//!   (`forwarding.rs`).
//! * A cluster id that is given must be this cluster's (INCONSISTENT_CLUSTER_ID); the voter
//!   needs a non-negative id and a directory id, and an endpoint on the first
//!   `controller.listener.names` listener (INVALID_REQUEST otherwise).
//! * Not the leader: NOT_LEADER_OR_FOLLOWER; a static quorum (`kraft.version` 0) or a node
//!   without one: UNSUPPORTED_VERSION; a voter already: DUPLICATE_VOTER; another change
//!   pending or the new voter not caught up within `TimeoutMs`: REQUEST_TIMED_OUT.
//! * `AckWhenCommitted` false (v1) is answered as true: the answer waits for the commit.

use std::time::Duration;

use gregor_protocol::messages::add_raft_voter_request::AddRaftVoterRequest;
use gregor_protocol::messages::add_raft_voter_response::AddRaftVoterResponse;
use gregor_protocol::{VersionRange, error_code};

use super::RequestContext;
use super::raft_voters::{Refusal, controller_endpoint, precheck, voter_change_refusal};
use crate::authorizer::AclOperation;

/// Versions served (all of Kafka's).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

fn answer(refusal: Refusal) -> AddRaftVoterResponse {
    AddRaftVoterResponse {
        error_code: refusal.code,
        error_message: refusal.message.map(Into::into),
        ..Default::default()
    }
}

/// Answers an AddRaftVoter request.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: AddRaftVoterRequest,
) -> AddRaftVoterResponse {
    let quorum = match precheck(
        ctx,
        AclOperation::Alter,
        request.cluster_id.as_deref(),
        "adding",
    ) {
        Ok(quorum) => quorum,
        Err(refusal) => return answer(refusal),
    };
    let listeners = request
        .listeners
        .iter()
        .map(|l| (&*l.name, &*l.host, l.port));
    let node = match controller_endpoint(ctx, request.voter_directory_id, listeners) {
        Ok(node) => node,
        Err(listener_name) => {
            let given: Vec<String> = request
                .listeners
                .iter()
                .map(|l| format!("{}://{}:{}", &*l.name, &*l.host, l.port))
                .collect();
            return answer(Refusal::new(
                error_code::INVALID_REQUEST,
                format!(
                    "Add voter request didn't include the endpoint ({given:?}) for the default \
                     listener {listener_name}"
                ),
            ));
        }
    };
    let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
    match quorum
        .add_voter(request.voter_id, request.voter_directory_id, node, timeout)
        .await
    {
        Ok(()) => AddRaftVoterResponse::default(),
        Err(e) => answer(voter_change_refusal(e)),
    }
}
