//! PushTelemetry (KIP-714): a client's metrics, checked and logged (not stored) by
//! [`crate::telemetry`].

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::push_telemetry_request::PushTelemetryRequest;
use gregor_protocol::messages::push_telemetry_response::PushTelemetryResponse;
use gregor_protocol::messages::request_header::RequestHeader;

use super::RequestContext;
use crate::telemetry::PushRequest;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// Answers a PushTelemetry request.
pub fn handle(
    ctx: &RequestContext,
    header: &RequestHeader,
    _version: i16,
    request: PushTelemetryRequest,
) -> PushTelemetryResponse {
    let client = super::get_telemetry_subscriptions::client_info(ctx, header);
    let push = PushRequest {
        client_instance_id: request.client_instance_id,
        subscription_id: request.subscription_id,
        terminating: request.terminating,
        compression_type: request.compression_type,
        metrics: &request.metrics,
    };
    let image = ctx.broker.image();
    let code = match ctx.broker.telemetry.push(&image, &push, &client) {
        Ok(_) => error_code::NONE,
        Err(code) => code,
    };
    PushTelemetryResponse {
        throttle_time_ms: 0,
        error_code: code,
        ..Default::default()
    }
}
