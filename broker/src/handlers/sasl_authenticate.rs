//! SaslAuthenticate once the connection needs no (more) authentication (see
//! `sasl_handshake.rs`): Kafka's `KafkaApis.handleSaslAuthenticateRequest`, ILLEGAL_SASL_STATE
//! with Kafka's message. During an exchange `connection_auth.rs` answers it.

use gregor_protocol::VersionRange;
use gregor_protocol::error_code;
use gregor_protocol::messages::sasl_authenticate_request::SaslAuthenticateRequest;
use gregor_protocol::messages::sasl_authenticate_response::SaslAuthenticateResponse;

use super::RequestContext;

/// Versions served (Kafka 4.3.1's).
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// Answers ILLEGAL_SASL_STATE.
pub fn handle(
    _ctx: &RequestContext,
    _version: i16,
    _request: SaslAuthenticateRequest,
) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse {
        error_code: error_code::ILLEGAL_SASL_STATE,
        error_message: Some(
            "SaslAuthenticate request received after successful authentication".into(),
        ),
        ..Default::default()
    }
}
