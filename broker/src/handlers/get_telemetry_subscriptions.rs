//! GetTelemetrySubscriptions (KIP-714): the metrics a client should push and how often,
//! from the client-metrics subscriptions (see [`crate::telemetry`]). An error response
//! carries the error code only, as Kafka's `getErrorResponse`.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::get_telemetry_subscriptions_request::GetTelemetrySubscriptionsRequest;
use gregor_protocol::messages::get_telemetry_subscriptions_response::GetTelemetrySubscriptionsResponse;
use gregor_protocol::messages::request_header::RequestHeader;

use super::RequestContext;
use crate::telemetry::{ACCEPTED_COMPRESSION_TYPES, ClientInfo};

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// Answers a GetTelemetrySubscriptions request.
pub fn handle(
    ctx: &RequestContext,
    header: &RequestHeader,
    _version: i16,
    request: GetTelemetrySubscriptionsRequest,
) -> GetTelemetrySubscriptionsResponse {
    let client = client_info(ctx, header);
    let image = ctx.broker.image();
    match ctx
        .broker
        .telemetry
        .get_subscriptions(&image, request.client_instance_id, &client)
    {
        Ok(s) => GetTelemetrySubscriptionsResponse {
            throttle_time_ms: 0,
            error_code: error_code::NONE,
            client_instance_id: s.client_instance_id,
            subscription_id: s.subscription_id,
            accepted_compression_types: ACCEPTED_COMPRESSION_TYPES.to_vec(),
            push_interval_ms: s.push_interval_ms,
            telemetry_max_bytes: ctx.broker.telemetry.max_bytes(),
            delta_temporality: true,
            requested_metrics: s.metrics.into_iter().map(Into::into).collect(),
            ..Default::default()
        },
        Err(code) => GetTelemetrySubscriptionsResponse {
            error_code: code,
            ..Default::default()
        },
    }
}

/// What `ctx` and `header` tell of the client, for subscriptions' `match` (shared with
/// PushTelemetry).
pub(super) fn client_info(ctx: &RequestContext, header: &RequestHeader) -> ClientInfo {
    let software = ctx.client_software();
    ClientInfo {
        client_id: header.client_id.as_deref().unwrap_or_default().to_string(),
        peer: ctx.peer,
        software_name: software.name,
        software_version: software.version,
    }
}
