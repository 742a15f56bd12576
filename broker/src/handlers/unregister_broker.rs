//! UnregisterBroker: removes a broker's registration
//! ([`crate::cluster::Controller::unregister_broker`]). Kafka's broker forwards it to the
//! controller, which requires ALTER on the cluster; here both listeners call the
//! controller directly.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::unregister_broker_request::UnregisterBrokerRequest;
use gregor_protocol::messages::unregister_broker_response::UnregisterBrokerResponse;

use super::RequestContext;
use super::authorize::Checker;
use crate::authorizer::AclOperation;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// Answers an UnregisterBroker request.
pub async fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: UnregisterBrokerRequest,
) -> UnregisterBrokerResponse {
    if !Checker::new(ctx).cluster(AclOperation::Alter) {
        return UnregisterBrokerResponse {
            error_code: error_code::CLUSTER_AUTHORIZATION_FAILED,
            error_message: gregor_protocol::ErrorCode::from(
                error_code::CLUSTER_AUTHORIZATION_FAILED,
            )
            .default_message()
            .map(Into::into),
            ..Default::default()
        };
    }
    let broker_id = request.broker_id;
    let outcome = ctx
        .broker
        .controller
        .run(move |controller| controller.unregister_broker(broker_id))
        .await;
    match outcome {
        Ok(()) => UnregisterBrokerResponse::default(),
        Err(error) => UnregisterBrokerResponse {
            error_code: error.code,
            error_message: error.message.map(Into::into),
            ..Default::default()
        },
    }
}
