//! BrokerHeartbeat (controller listener): a registered broker keeps its session and asks
//! to be unfenced, fenced or shut down ([`crate::cluster::Controller::broker_heartbeat`]);
//! CLUSTER_ACTION on the cluster is required, as in Kafka's `ControllerApis`.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::broker_heartbeat_request::BrokerHeartbeatRequest;
use gregor_protocol::messages::broker_heartbeat_response::BrokerHeartbeatResponse;

use super::RequestContext;
use super::authorize::Checker;
use crate::authorizer::AclOperation;

/// Versions served (all of Kafka's).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// Answers a BrokerHeartbeat request.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: BrokerHeartbeatRequest,
) -> BrokerHeartbeatResponse {
    let refused = |code| BrokerHeartbeatResponse {
        error_code: code,
        is_caught_up: false,
        is_fenced: true,
        should_shut_down: false,
        ..Default::default()
    };
    if !Checker::new(ctx).cluster(AclOperation::ClusterAction) {
        return refused(error_code::CLUSTER_AUTHORIZATION_FAILED);
    }
    let outcome = ctx
        .broker
        .controller
        .run(move |controller| controller.broker_heartbeat(&request))
        .await;
    match outcome {
        Ok(reply) => BrokerHeartbeatResponse {
            error_code: error_code::NONE,
            is_caught_up: reply.is_caught_up,
            is_fenced: reply.is_fenced,
            should_shut_down: reply.should_shut_down,
            ..Default::default()
        },
        Err(error) => {
            tracing::debug!(
                "heartbeat refused: {}",
                error.message.as_deref().unwrap_or_default()
            );
            refused(error.code)
        }
    }
}
