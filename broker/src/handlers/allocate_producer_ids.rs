//! AllocateProducerIds (controller listener): a broker of the cluster asks the active
//! controller for its next block of producer ids
//! ([`crate::cluster::Controller::allocate_producer_ids`], Kafka's
//! `ControllerApis.handleAllocateProducerIdsRequest`); CLUSTER_ACTION on the cluster is
//! required.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::allocate_producer_ids_request::AllocateProducerIdsRequest;
use gregor_protocol::messages::allocate_producer_ids_response::AllocateProducerIdsResponse;

use super::RequestContext;
use super::authorize::Checker;
use crate::authorizer::AclOperation;

/// Versions served (all of Kafka's).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// Answers an AllocateProducerIds request.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: AllocateProducerIdsRequest,
) -> AllocateProducerIdsResponse {
    let refused = |code| AllocateProducerIdsResponse {
        error_code: code,
        ..Default::default()
    };
    if !Checker::new(ctx).cluster(AclOperation::ClusterAction) {
        return refused(error_code::CLUSTER_AUTHORIZATION_FAILED);
    }
    let (broker_id, broker_epoch) = (request.broker_id, request.broker_epoch);
    let outcome = ctx
        .broker
        .controller
        .run(move |controller| controller.allocate_producer_ids(broker_id, broker_epoch, true))
        .await;
    match outcome {
        Ok((start, len)) => AllocateProducerIdsResponse {
            error_code: error_code::NONE,
            producer_id_start: start,
            producer_id_len: len,
            ..Default::default()
        },
        Err(error) => {
            tracing::debug!(
                broker_id,
                "producer ids refused: {}",
                error.message.as_deref().unwrap_or_default()
            );
            refused(error.code)
        }
    }
}
