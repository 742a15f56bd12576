//! DescribeCluster: this broker as the cluster's one node, on the listener the client used,
//! as Kafka's `handleDescribeCluster` answers brokers' endpoints (`EndpointType` BROKER):
//! the cluster id, the controller id (an alive broker, as Kafka hides its controllers from
//! clients: this node), the brokers (unfenced only unless `include_fenced_brokers`, v2+) and
//! the cluster authorized operations when asked. An endpoint type other than BROKER (v1+)
//! gets `MISMATCHED_ENDPOINT_TYPE` (CONTROLLER) or `UNSUPPORTED_ENDPOINT_TYPE` (unknown),
//! `INVALID_REQUEST` at v0, with Kafka's messages.

use gregor_protocol::VersionRange;
use gregor_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use gregor_protocol::messages::describe_cluster_response::{
    DescribeClusterBroker, DescribeClusterResponse,
};

use super::RequestContext;
use super::metadata::AUTHORIZED_OPERATIONS_OMITTED;
use gregor_protocol::error_code;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// Kafka's `EndpointType`: BROKER.
const ENDPOINT_BROKER: i8 = 1;
/// Kafka's `EndpointType`: CONTROLLER.
const ENDPOINT_CONTROLLER: i8 = 2;

/// Answers a DescribeCluster request.
pub fn handle(
    ctx: &RequestContext,
    version: i16,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let broker = &ctx.broker;
    let requested = request.endpoint_type;
    if ctx.on_controller_listener() {
        return controllers(ctx, version, requested);
    }
    if requested != ENDPOINT_BROKER {
        let (code, message) = if requested == ENDPOINT_CONTROLLER {
            (
                error_code::MISMATCHED_ENDPOINT_TYPE,
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint \
                 of type CONTROLLER"
                    .to_string(),
            )
        } else {
            (
                error_code::UNSUPPORTED_ENDPOINT_TYPE,
                format!("Unsupported endpoint type {requested}"),
            )
        };
        return DescribeClusterResponse {
            error_code: if version == 0 {
                error_code::INVALID_REQUEST
            } else {
                code
            },
            error_message: Some(message.into()),
            ..Default::default()
        };
    }
    let image = broker.image();
    let fenced = image.broker(broker.node_id).is_some_and(|b| b.fenced);
    let brokers = super::metadata::live_brokers(ctx, &image, request.include_fenced_brokers)
        .into_iter()
        .filter(|b| !b.fenced || request.include_fenced_brokers)
        .map(|b| DescribeClusterBroker {
            broker_id: b.id,
            host: b.host.into(),
            port: i32::from(b.port),
            rack: b.rack.map(Into::into),
            // A v2 field: v0 and v1 never list fenced brokers, so it stays false there.
            is_fenced: b.fenced,
            ..Default::default()
        })
        .collect();
    DescribeClusterResponse {
        throttle_time_ms: 0,
        error_code: error_code::NONE,
        error_message: None,
        endpoint_type: ENDPOINT_BROKER,
        cluster_id: broker.cluster_id.as_str().into(),
        // An alive (unfenced) broker stands for the controller, -1 when there is none.
        controller_id: if fenced { -1 } else { broker.node_id },
        brokers,
        // Kafka: the cluster's authorized operations with DESCRIBE on it, else none.
        cluster_authorized_operations: if request.include_cluster_authorized_operations {
            let checker = super::authorize::Checker::new(ctx);
            if checker.cluster(crate::authorizer::AclOperation::Describe) {
                checker.operations(
                    crate::authorizer::ResourceType::Cluster,
                    super::authorize::CLUSTER_NAME,
                )
            } else {
                0
            }
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        },
        ..Default::default()
    }
}

/// DescribeCluster on the controller listener, as Kafka's `ControllerApis` answers it: the
/// registered controllers at their endpoints on that listener for endpoint type CONTROLLER
/// (this node stands for the active controller); `MISMATCHED_ENDPOINT_TYPE` for BROKER
/// (`INVALID_REQUEST` at v0, which cannot ask for controllers).
fn controllers(ctx: &RequestContext, version: i16, requested: i8) -> DescribeClusterResponse {
    let refuse = |code: i16, message: String| DescribeClusterResponse {
        error_code: if version == 0 {
            error_code::INVALID_REQUEST
        } else {
            code
        },
        error_message: Some(message.into()),
        ..Default::default()
    };
    match requested {
        ENDPOINT_CONTROLLER => {}
        ENDPOINT_BROKER => {
            return refuse(
                error_code::MISMATCHED_ENDPOINT_TYPE,
                "The request was sent to an endpoint of type CONTROLLER, but we wanted an \
                 endpoint of type BROKER"
                    .to_string(),
            );
        }
        other => {
            return refuse(
                error_code::UNSUPPORTED_ENDPOINT_TYPE,
                format!("Unsupported endpoint type {other}"),
            );
        }
    }
    let image = ctx.broker.image();
    let brokers = image
        .controllers()
        .values()
        .filter_map(|c| {
            let endpoint = c
                .endpoints
                .iter()
                .find(|e| e.listener.eq_ignore_ascii_case(&ctx.listener))?;
            Some(DescribeClusterBroker {
                broker_id: c.id,
                host: endpoint.host.as_str().into(),
                port: i32::from(endpoint.port),
                rack: None,
                ..Default::default()
            })
        })
        .collect();
    DescribeClusterResponse {
        error_code: error_code::NONE,
        endpoint_type: ENDPOINT_CONTROLLER,
        cluster_id: ctx.broker.cluster_id.as_str().into(),
        controller_id: ctx.broker.node_id,
        brokers,
        cluster_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        ..Default::default()
    }
}
