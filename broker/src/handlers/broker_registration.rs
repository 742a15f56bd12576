//! BrokerRegistration (controller listener): a broker joins the cluster. The checks and
//! records are the controller's ([`crate::cluster::Controller::register_broker`]); the
//! sender needs CLUSTER_ACTION on the cluster, as Kafka's `ControllerApis` requires.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::broker_registration_request::BrokerRegistrationRequest;
use gregor_protocol::messages::broker_registration_response::BrokerRegistrationResponse;

use super::RequestContext;
use super::authorize::Checker;
use crate::authorizer::AclOperation;

/// Versions served (all of Kafka's).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

/// Answers a BrokerRegistration request.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: BrokerRegistrationRequest,
) -> BrokerRegistrationResponse {
    if !Checker::new(ctx).cluster(AclOperation::ClusterAction) {
        return BrokerRegistrationResponse {
            error_code: error_code::CLUSTER_AUTHORIZATION_FAILED,
            broker_epoch: -1,
            ..Default::default()
        };
    }
    let broker_id = request.broker_id;
    let outcome = ctx
        .broker
        .controller
        .run(move |controller| controller.register_broker(&request))
        .await;
    match outcome {
        Ok(epoch) => BrokerRegistrationResponse {
            error_code: error_code::NONE,
            broker_epoch: epoch,
            ..Default::default()
        },
        Err(error) => {
            tracing::info!(
                broker = broker_id,
                "broker registration refused: {}",
                error.message.as_deref().unwrap_or_default()
            );
            BrokerRegistrationResponse {
                error_code: error.code,
                broker_epoch: -1,
                ..Default::default()
            }
        }
    }
}
