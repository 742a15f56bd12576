//! ControllerRegistration (controller listener): another controller announces its
//! listeners and features. This node is the only voter of a static quorum, so it answers
//! as a controller that is not the active one would, `NOT_CONTROLLER`, unless the
//! registration is its own id (then it already wrote its `RegisterControllerRecord` at
//! start-up and answers with no error). Writing other controllers' registrations comes with
//! the replicated quorum.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::controller_registration_request::ControllerRegistrationRequest;
use gregor_protocol::messages::controller_registration_response::ControllerRegistrationResponse;

use super::RequestContext;
use super::authorize::Checker;
use crate::authorizer::AclOperation;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// Answers a ControllerRegistration request.
pub fn handle(
    ctx: &RequestContext,
    _version: i16,
    request: ControllerRegistrationRequest,
) -> ControllerRegistrationResponse {
    if !Checker::new(ctx).cluster(AclOperation::ClusterAction) {
        return ControllerRegistrationResponse {
            error_code: error_code::CLUSTER_AUTHORIZATION_FAILED,
            ..Default::default()
        };
    }
    if request.controller_id == ctx.broker.node_id {
        return ControllerRegistrationResponse::default();
    }
    ControllerRegistrationResponse {
        error_code: error_code::NOT_CONTROLLER,
        error_message: Some(
            format!(
                "Controller {} is not a voter of this static quorum.",
                request.controller_id
            )
            .into(),
        ),
        ..Default::default()
    }
}
